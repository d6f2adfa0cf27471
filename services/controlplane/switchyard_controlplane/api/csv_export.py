"""CSV renditions of report endpoints: `?format=csv` or `Accept: text/csv`."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from fastapi import Request, Response

__all__ = ["ReportFormat", "csv_response", "wants_csv"]

ReportFormat = Literal["json", "csv"]


def wants_csv(request: Request, format: ReportFormat | None) -> bool:
    """An explicit `format` wins; otherwise CSV when the client accepts text/csv and
    not JSON first."""
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    if "text/csv" not in accept:
        return False
    json_at = accept.find("application/json")
    return json_at == -1 or accept.find("text/csv") < json_at


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def csv_response(rows: Sequence[dict[str, Any]], columns: Sequence[str], filename: str) -> Response:
    """`rows` as CSV with a header line of `columns` (missing values are empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
