"""The HTTP API (FastAPI): routes, schemas, auth, problem+json errors."""
