"""Measure the install footprint: what the first ``uv run qmtl up`` / ``uv run pytest`` syncs.

    uv run python bench/install.py [--ref REV ...] [--rounds 2] [--group parity]

For the working tree (and each ``--ref``, exported with ``git archive``) it creates a fresh
virtual environment twice per round: once with an empty uv cache (downloads, and builds any
package that has no wheel) and once with the cache the first sync filled (a developer who
already has the wheels). It prints the time of each ``uv sync``, the installed distributions,
the environment's size and which packages were built from source. Nothing outside a temporary
folder is touched. Network time dominates the cold-cache column: compare rounds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tree(ref: str | None, workdir: Path) -> Path:
    if ref is None:
        return ROOT
    target = workdir / f"src-{re.sub(r'[^A-Za-z0-9._-]', '_', ref)}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _sync(tree: Path, venv: Path, cache: Path, groups: list[str]) -> tuple[float, str]:
    env = os.environ | {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_CACHE_DIR": str(cache)}
    command = ["uv", "sync", "--no-progress", *[f"--group={g}" for g in groups]]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stderr


def _size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _count(venv: Path) -> int:
    code = "import importlib.metadata as m; print(len(list(m.distributions())))"
    return int(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", action="append", default=[], help="also measure a git rev")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--group", action="append", default=[], help="extra dependency group")
    args = parser.parse_args(argv)
    print(
        f"uv sync of a fresh environment; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
    )
    print("| tree | round | cold cache (s) | warm cache (s) | packages | venv MiB | built |")
    print("|---|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="qmtl-install-") as tmp:
        workdir = Path(tmp)
        for ref in [None, *args.ref]:
            tree = _tree(ref, workdir)
            for round_ in range(1, args.rounds + 1):
                venv, cache = workdir / "venv", workdir / "cache"
                cold, log = _sync(tree, venv, cache, args.group)
                built = sorted(set(re.findall(r"Built (\S+)==", log)))
                shutil.rmtree(venv)
                warm, _ = _sync(tree, venv, cache, args.group)
                print(
                    f"| {ref or 'working tree'} | {round_} | {cold:.1f} | {warm:.2f} | "
                    f"{_count(venv)} | {_size_mib(venv):.0f} | {', '.join(built) or '-'} |"
                )
                shutil.rmtree(venv)
                shutil.rmtree(cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
