"""Durable state: SQLAlchemy models, the database session, the few queries jobs need."""
