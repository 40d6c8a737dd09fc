"""Persistence: SQLAlchemy 2 Core on an async engine; one repository module per aggregate."""
