"""How long an uploaded audio file plays: what an asr call is billed for when the
upstream does not say (OpenAI's `json` answers of whisper models do, `text`, `srt` and
`vtt` ones do not).

The container's own header says it (mutagen: WAV, MP3, FLAC, Ogg Vorbis/Opus, M4A/MP4,
AIFF, ...). Files it cannot read (WebM from browsers' MediaRecorder often has no
duration at all) are estimated from their size at a typical speech bit rate; either way
the call is marked estimated.
"""

from __future__ import annotations

import io
import logging

import mutagen

__all__ = ["ESTIMATE_BITS_PER_SECOND", "audio_seconds"]

log = logging.getLogger(__name__)

# Opus / AAC speech recordings run at 32-64 kbit/s; taking the middle of that range.
ESTIMATE_BITS_PER_SECOND = 48_000


def audio_seconds(data: bytes) -> tuple[float, bool]:
    """(seconds, measured): the duration from the file's header, or (estimate, False)
    from its size when no header says."""
    try:
        found = mutagen.File(io.BytesIO(data))
    except Exception:  # a corrupt file is the upstream's to refuse, not the meter's
        log.debug("audio header unreadable", exc_info=True)
        found = None
    length = getattr(getattr(found, "info", None), "length", None)
    if isinstance(length, int | float) and length > 0:
        return round(float(length), 3), True
    return round(len(data) * 8 / ESTIMATE_BITS_PER_SECOND, 3), False
