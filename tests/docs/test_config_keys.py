"""Every configuration key the docs mention (``worldservice.server.*``, ``gateway.*`` and
``QMTL__…`` environment names) exists in the settings models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ._markdown import ROOT, pages_and_readme
from ._scripts import load_script

gen = load_script("gen_docs_config")
KEYS = frozenset(gen.all_keys())
# Every proper prefix of a key is a section (`gateway.timeouts`, `worldservice.server.relay`).
SECTIONS = frozenset(".".join(k.split(".")[:i]) for k in KEYS for i in range(1, k.count(".") + 1))

DOTTED = re.compile(r"(?<![\w./:@-])((?:worldservice\.server|gateway)(?:\.[A-Za-z0-9_<>*]+)*)")
ENV = re.compile(r"(?<![\w])QMTL__([A-Z0-9_]+)")
NOT_CONFIG = frozenset({
    "gateway.md", "gateway.py",            # file names
    "gateway.rebalance",                    # the commit-log record topic
})


def _normalise(dotted: str) -> str:
    parts = [p for p in dotted.rstrip(".").split(".") if p != "*"]
    # Any concrete venue name stands for the `<venue>` placeholder.
    for i, part in enumerate(parts[:-1]):
        if part == "venue_policies" and i + 1 < len(parts):
            parts[i + 1] = "<venue>"
    return ".".join(parts)


def _known(dotted: str) -> bool:
    key = _normalise(dotted)
    return key in KEYS or key in SECTIONS or key == "gateway"


def _env_to_dotted(name: str) -> str:
    parts = [p.lower() for p in name.strip("_").split("__") if p]
    if parts[:2] == ["worldservice", "server"]:
        return ".".join(["worldservice.server", *parts[2:]])
    return ".".join(parts)


def mentions(path: Path) -> list[tuple[str, str]]:
    """``(what was written, dotted key)`` for every config mention on a page."""
    text = path.read_text()
    found = [(m, m) for m in DOTTED.findall(text) if m not in NOT_CONFIG]
    found += [(f"QMTL__{m}", _env_to_dotted(m)) for m in ENV.findall(text)]
    return found


MENTIONS = [(path, written, dotted) for path in pages_and_readme()
            for written, dotted in mentions(path)]


def test_the_docs_mention_config_keys() -> None:
    assert len(MENTIONS) > 100
    documented = {_normalise(d) for _, _, d in MENTIONS}
    # The keys SPEC §5 names are written out in full somewhere in the docs.
    spec_keys = {
        "worldservice.server.compat_rebalance_v2", "worldservice.server.alpha_metrics_required",
        "worldservice.server.dsn", "worldservice.server.controlbus",
        "gateway.rebalance_schema_version", "gateway.alpha_metrics_capable",
        "gateway.compute_context_contract", "gateway.worldservice_url",
        "gateway.enforce_live_guard", "gateway.commit_log",
    }
    assert spec_keys <= documented


@pytest.mark.parametrize("path, written, dotted", MENTIONS,
                         ids=[f"{p.relative_to(ROOT)}:{w}" for p, w, _ in MENTIONS])
def test_mentioned_key_exists(path: Path, written: str, dotted: str) -> None:
    assert _known(dotted), f"{path.relative_to(ROOT)} mentions {written}, which is not a setting"


@pytest.mark.parametrize("written", [
    "gateway.rebalance_schema_versoin", "worldservice.server.compat_v2",
    "QMTL__GATEWAY__ENFORCE_LIVE_GAURD", "QMTL__WORLDSERVICE__SERVER__RELAY__BATCHSIZE",
])
def test_typos_are_caught(written: str) -> None:
    dotted = _env_to_dotted(written[len("QMTL__"):]) if written.startswith("QMTL__") else written
    assert not _known(dotted)


@pytest.mark.parametrize("written", [
    "gateway.venue_policies.binance.lot_size", "gateway.shared_account_policy.*",
    "QMTL__WORLDSERVICE__SERVER__", "QMTL__GATEWAY__VENUE_POLICIES__BINANCE__LOT_SIZE",
])
def test_sections_and_placeholders_are_accepted(written: str) -> None:
    dotted = _env_to_dotted(written[len("QMTL__"):]) if written.startswith("QMTL__") else written
    assert _known(dotted)
