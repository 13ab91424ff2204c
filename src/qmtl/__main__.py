"""``python -m qmtl`` runs the ``qmtl`` command."""

from __future__ import annotations

from qmtl.cli.main import main

main()
