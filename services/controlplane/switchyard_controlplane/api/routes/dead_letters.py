"""Usage messages the ingest could not store (poison), as the ingest recorded them in
`usage_dead_letters` (it also copies them to the dead-letter subject in JetStream)."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from switchyard_common.usage_dead_letters import DeadLetter, count_dead_letters, list_dead_letters

from ...deps import AdminDep, ContextDep

router = APIRouter(tags=["usage"])

# Payloads are shown as text up to this many characters (the full bytes are in base64).
_PREVIEW = 2000


def _item(letter: DeadLetter) -> dict[str, Any]:
    text = letter.payload.decode("utf-8", errors="replace")
    return {
        "id": letter.id,
        "subject": letter.subject,
        "msg_id": letter.msg_id,
        "reason": letter.reason,
        "deliveries": letter.deliveries,
        "created_at": letter.created_at.isoformat() if letter.created_at else None,
        "payload": text[:_PREVIEW],
        "payload_truncated": len(text) > _PREVIEW,
        "payload_base64": base64.b64encode(letter.payload).decode(),
    }


@router.get("/usage/dead-letters")
async def dead_letters(
    context: ContextDep,
    _admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[datetime | None, Query(description="only letters recorded before this time")] = None,
) -> dict[str, Any]:
    """Dead-lettered usage messages, newest first, with why each was set aside and its
    payload. `total` counts every recorded letter; page back with `before` = the
    `created_at` of the last item."""

    def run() -> tuple[list[DeadLetter], int]:
        with context.engine.connect() as conn:
            return list_dead_letters(conn, limit=limit, before=before), count_dead_letters(conn)

    letters, total = await asyncio.to_thread(run)
    return {"total": total, "items": [_item(letter) for letter in letters]}
