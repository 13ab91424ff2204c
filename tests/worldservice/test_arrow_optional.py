"""pyarrow is optional: without it the services, the SDK and the CLI import and serve JSON,
and nothing loads pyarrow until an Arrow body or ``Accept`` asks for it."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
{block}
from qmtl.worldservice.app import create_app as ws_app
from qmtl.gateway.app import create_app as gw_app
import qmtl.sdk, qmtl.cli.main, qmtl.engine
assert "pyarrow" not in sys.modules or sys.modules["pyarrow"] is None, "pyarrow was imported"
print("ok")
"""


def _run(block: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(block=block)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_services_import_without_loading_pyarrow() -> None:
    result = _run("")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_services_import_when_pyarrow_is_not_installed() -> None:
    result = _run('sys.modules["pyarrow"] = None  # import pyarrow -> ImportError')
    assert result.returncode == 0, result.stderr
