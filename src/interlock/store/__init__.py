"""SQL storage on SQLite and PostgreSQL (SQLAlchemy Core), with Alembic migrations."""
