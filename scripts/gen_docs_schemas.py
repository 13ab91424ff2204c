"""MkDocs hook: publish the committed JSON Schemas (``schemas/*.json``) with the site.

Registered in ``mkdocs.yml`` (``hooks:``). Each file becomes ``schemas/<name>`` in the site,
so pages link to it like any other file (``[v2 request](schemas/rebalance_request.v2.json)``)
and ``mkdocs build --strict`` fails on a link to a schema that does not exist. The files are
served exactly as committed; ``qmtl schemas check`` keeps them equal to the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SITE_FOLDER = "schemas"


def schema_files() -> list[Path]:
    """The committed schema files, sorted by name."""
    return sorted(SCHEMAS.glob("*.json"))


def on_files(files: Files, config: Any, **_: Any) -> Files:
    """Add every schema file to the site's files (MkDocs event hook)."""
    for path in schema_files():
        files.append(File.generated(config, f"{SITE_FOLDER}/{path.name}", abs_src_path=str(path)))
    return files
