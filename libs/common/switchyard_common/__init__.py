"""Code shared by every Switchyard tier: the usage-event contract, the config-as-code
schema, secrets handling, the event bus interface and the exception tree. Each module
declares its public names in `__all__`."""
