"""Switchyard control plane: configuration store, admin REST API and the gRPC
snapshot service the data planes watch."""

__all__: list[str] = []
