"""Request bodies of the media routes, as the official SDKs send them."""

from __future__ import annotations

import io
import wave

BOUNDARY = "----switchyard-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def wav_bytes(seconds: float, rate: int = 16000) -> bytes:
    """A mono 16-bit WAV of silence lasting `seconds`."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


def form(fields: dict[str, str], files: dict[str, tuple[str, str, bytes]], boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body: text `fields`, then `files` (name -> filename, type, data)."""
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, (filename, content_type, data) in files.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)
