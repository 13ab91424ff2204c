"""Render the expected compatibility matrix into ``docs/compatibility.md``.

The table lives in ``tests/e2e/compat_expectations.py`` (written from SPEC); the end-to-end
test ``tests/e2e/test_compat_matrix.py`` checks both that real processes behave as the table
says and that the committed page equals this rendering.

Usage::

    uv run python scripts/gen_compat_matrix.py            # (re)write docs/compatibility.md
    uv run python scripts/gen_compat_matrix.py --check    # exit 1 when the page is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "compatibility.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when docs/compatibility.md differs")
    parser.add_argument("--output", type=Path, default=PAGE, help="where to write the page")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from tests.e2e.compat_expectations import render_markdown

    rendered = render_markdown()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != rendered:
            print(f"{args.output} is stale: run uv run python scripts/gen_compat_matrix.py",
                  file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(rendered)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
