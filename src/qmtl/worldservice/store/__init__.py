"""The WorldService store: SQLAlchemy 2 Core tables, the async database handle, and
repositories that return plain dataclasses or contract models (never rows)."""
