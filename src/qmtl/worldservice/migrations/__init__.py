"""Alembic migrations of the WorldService store (applied at start-up and by
``qmtl worldservice migrate``)."""
