"""Benchmark the ``qmtl`` command as a user runs it (SPEC 7: ``qmtl --help`` <= 0.5 s, a local
``qmtl plan`` of 10,000 positions <= 1 s wall).

    uv run python bench/cli.py [--repeat 5] [--positions 10000] [--src DIR] [--no-terminal]

Each case is a fresh ``python -m qmtl`` process (start-up and imports included), timed wall
clock from spawn to exit, after one warm-up run that writes the bytecode caches (a user's
second run; ``PYTHONDONTWRITEBYTECODE`` is removed from the environment). Output goes to a
pipe, except the "terminal" row, which runs under a pseudo-terminal so the rich table path is
measured. ``--src DIR`` times another checkout's ``src`` (e.g. ``git archive`` of an older
commit) with this environment, for before/after tables.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_line, seeded_request

HELP_TARGET_S = 0.5
PLAN_TARGET_S = 1.0


def _env(src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("QMTL_GATEWAY_URL", None)
    env["COLUMNS"] = "120"
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


class CaseFailed(Exception):
    """The command exited non-zero (e.g. an option an older checkout does not have)."""


def _run_piped(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "qmtl", *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise CaseFailed(done.stderr.decode().strip().splitlines()[-1][:80])
    return elapsed


def _run_terminal(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout is the pseudo-terminal
        os.execvpe(sys.executable, [sys.executable, "-m", "qmtl", *args], env)
    while True:  # drain the terminal, or the child blocks on a full buffer
        try:
            if not os.read(fd, 1 << 16):
                break
        except OSError:
            break
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    os.close(fd)
    if os.waitstatus_to_exitcode(status) != 0:
        raise CaseFailed("failed on a terminal")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--src", type=Path, help="time this checkout's src/ instead")
    parser.add_argument("--no-terminal", action="store_true",
                        help="skip the pseudo-terminal rows (slow on older checkouts)")
    args = parser.parse_args()
    env = _env(args.src.resolve() if args.src else None)
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "plan.json"
        request.write_text(json.dumps(seeded_request(args.positions,
                                                     n_symbols=args.positions)))
        plan = ["plan", str(request)]
        cases = [
            ("qmtl --help", ["--help"], _run_piped, HELP_TARGET_S),
            (f"qmtl plan {args.positions:,} -o json (piped)", [*plan, "-o", "json"], _run_piped,
             PLAN_TARGET_S),
            (f"qmtl plan {args.positions:,} -o table (piped: TSV)", plan, _run_piped, None),
            (f"qmtl plan {args.positions:,} -o csv (piped)", [*plan, "-o", "csv"], _run_piped,
             None),
            (f"qmtl plan {args.positions:,} -o json (terminal)", [*plan, "-o", "json"],
             _run_terminal, None),
            (f"qmtl plan {args.positions:,} -o table (terminal)", plan, _run_terminal, None),
        ]
        if args.no_terminal:
            cases = [case for case in cases if case[2] is not _run_terminal]
        print(f"machine: {machine_line()}")
        print(f"source: {args.src or 'this checkout'}; {args.repeat} runs after one warm-up")
        print()
        print("| command | median s | best s | target |")
        print("|---|---:|---:|---|")
        for label, argv, run, target in cases:
            try:
                run(argv, env)  # warm-up: bytecode caches, page cache
                samples = [run(argv, env) for _ in range(args.repeat)]
            except CaseFailed as exc:
                print(f"| `{label}` | failed: {exc} | | |")
                continue
            median = statistics.median(samples)
            verdict = "" if target is None else (
                f"<= {target:g} s: {'met' if median <= target else 'NOT met'}")
            print(f"| `{label}` | {median:.2f} | {min(samples):.2f} | {verdict} |")


if __name__ == "__main__":
    main()
