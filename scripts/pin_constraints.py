"""Regenerate ``[tool.uv] constraint-dependencies`` in pyproject.toml.

The lock file is not committed (it records the registry's download addresses), so the
whole resolved dependency set (the default ``dev`` group and the opt-in ``parity`` group)
is pinned here instead. Run after changing dependencies::

    uv run python scripts/pin_constraints.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
BEGIN = "# --- pinned by scripts/pin_constraints.py (do not edit by hand) ---"
END = "# --- end of pins ---"


def compile_pins() -> list[str]:
    out = subprocess.run(
        [
            "uv",
            "pip",
            "compile",
            str(PYPROJECT),
            "--group",
            "dev",
            # the non-default groups are pinned too: CI installs them with the same pins
            "--group",
            "parity",
            "--all-extras",
            "--python-version",
            "3.11",
            "--no-header",
            "--no-annotate",
            "--quiet",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = []
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("-"):
            continue
        pins.append(line)
    return sorted(pins, key=str.lower)


def main() -> int:
    pins = compile_pins()
    block = "\n".join(
        [BEGIN, "[tool.uv]", "constraint-dependencies = ["]
        + [f'    "{p}",' for p in pins]
        + ["]", END]
    )
    text = PYPROJECT.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    text = (
        pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    PYPROJECT.write_text(text)
    sys.stdout.write(f"pinned {len(pins)} packages\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
