"""Just enough of multipart/form-data (RFC 7578) to route a passthrough call: find the
parts, read the text fields and rewrite the `model` field in place, without copying or
re-encoding the file parts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchyard_common.errors import InvalidRequest

__all__ = ["FormPart", "MultipartForm", "boundary_of", "parse_form"]

_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_PARAM = re.compile(r'(?:^|;)\s*(name|filename)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', re.IGNORECASE)
# RFC 2046: a boundary is 1 to 70 characters.
_MAX_BOUNDARY = 70


@dataclass(frozen=True, slots=True)
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    start: int  # the part's data is body[start:end]
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class MultipartForm:
    body: bytes
    parts: tuple[FormPart, ...]

    def part(self, name: str) -> FormPart | None:
        return next((p for p in self.parts if p.name == name), None)

    def files(self) -> list[FormPart]:
        return [p for p in self.parts if p.filename is not None]

    def data(self, part: FormPart) -> bytes:
        return self.body[part.start : part.end]

    def text(self, name: str) -> str | None:
        """The value of the text field `name` (None when absent or a file)."""
        part = self.part(name)
        if part is None or part.filename is not None:
            return None
        return self.data(part).decode("utf-8", "replace")

    def fields(self) -> dict[str, str]:
        """Every text field (the first of repeated names)."""
        found: dict[str, str] = {}
        for part in self.parts:
            if part.filename is None and part.name not in found:
                found[part.name] = self.data(part).decode("utf-8", "replace")
        return found

    def with_text(self, name: str, value: str) -> bytes:
        """The body with the text field `name` set to `value` (it must exist)."""
        part = self.part(name)
        assert part is not None and part.filename is None
        return self.body[: part.start] + value.encode() + self.body[part.end :]


def boundary_of(content_type: str) -> str | None:
    """The boundary parameter of a multipart/form-data content type, else None."""
    if not content_type.lower().lstrip().startswith("multipart/form-data"):
        return None
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    boundary = match.group(1) or match.group(2)
    return boundary if 0 < len(boundary) <= _MAX_BOUNDARY else None


def _invalid(why: str) -> InvalidRequest:
    return InvalidRequest(f"the multipart/form-data body is malformed: {why}", code="invalid_multipart")


def _disposition(value: str) -> tuple[str | None, str | None]:
    kind, _, params = value.partition(";")
    if kind.strip().lower() != "form-data":
        return None, None
    found: dict[str, str] = {}
    for match in _PARAM.finditer(";" + params):
        quoted, bare = match.group(2), match.group(3)
        text = quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted is not None else bare.strip()
        found.setdefault(match.group(1).lower(), text)
    return found.get("name"), found.get("filename")


def parse_form(body: bytes, content_type: str) -> MultipartForm:
    """The parts of a multipart/form-data body; InvalidRequest (400) when it is not one."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise InvalidRequest(
            "this route takes multipart/form-data with a boundary "
            f"(got Content-Type {content_type or 'none'!r})",
            code="invalid_content_type",
        )
    delimiter = b"--" + boundary.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0 or (pos > 0 and body[pos - 2 : pos] != b"\r\n"):
        raise _invalid("the boundary does not occur in the body")
    parts: list[FormPart] = []
    while True:
        pos += len(delimiter)
        if body.startswith(b"--", pos):
            return MultipartForm(body, tuple(parts))
        # Transport padding (spaces, tabs) may follow a delimiter.
        while pos < len(body) and body[pos] in b" \t":
            pos += 1
        if not body.startswith(b"\r\n", pos):
            raise _invalid("a boundary line is not followed by CRLF")
        pos += 2
        if body.startswith(b"\r\n", pos):
            head, start = b"", pos + 2
        else:
            head_end = body.find(b"\r\n\r\n", pos)
            if head_end < 0:
                raise _invalid("a part's headers do not end")
            head, start = body[pos:head_end], head_end + 4
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise _invalid("the closing boundary is missing")
        name: str | None = None
        filename: str | None = None
        part_type: str | None = None
        for line in head.split(b"\r\n"):
            field, _, value = line.decode("utf-8", "replace").partition(":")
            field = field.strip().lower()
            if field == "content-disposition":
                name, filename = _disposition(value.strip())
            elif field == "content-type":
                part_type = value.strip()
        if name is not None:
            parts.append(FormPart(name, filename, part_type, start, end))
        pos = end + 2
