"""The `switchyard` command: run the stack and drive the control plane as code."""
