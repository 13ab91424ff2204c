"""The engine is pure: importing it loads no web framework, database or network client."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("fastapi", "sqlalchemy", "httpx", "redis", "starlette", "uvicorn", "asyncpg")

PROBE = """
import json, sys
import qmtl.engine
import qmtl.engine.split, qmtl.engine.orders, qmtl.engine.account, qmtl.engine.overlay
import qmtl.engine.explain
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_engine_imports_no_io_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(result.stdout))
    assert "qmtl" in loaded and "numpy" in loaded  # the probe really imported the engine
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
