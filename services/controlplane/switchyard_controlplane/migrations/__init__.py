"""Alembic environment of the Switchyard schema (shipped as package data)."""
