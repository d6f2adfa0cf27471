"""Mock upstreams of every protocol the gateway speaks to (OpenAI chat + embeddings,
OpenAI media (images, audio) with Mistral OCR and segmentation, Azure OpenAI, Anthropic
Messages, Gemini), in one real HTTP server.

Behaviour is deterministic and the same in every protocol (see `behaviour.py`).
Run: python -m tests.support.mock_upstreams --port N
"""

from __future__ import annotations

from .app import RECEIVED, app

__all__ = ["RECEIVED", "app"]
