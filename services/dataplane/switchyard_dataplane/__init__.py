"""Switchyard data plane: serves `/v1/*`, routes to providers from the snapshot index,
relays responses and streams, and emits one usage event per call."""

__all__: list[str] = []
