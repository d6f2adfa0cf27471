"""The admin REST API (`/api/v1`): schemas, error mapping and thin route modules."""
