"""The configuration reference page is exactly what the generator makes from the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ._scripts import load_script

gen = load_script("gen_docs_config")


def test_the_committed_page_equals_the_generator_output() -> None:
    assert gen.PAGE.read_text() == gen.render(), (
        "docs/reference/configuration.md is stale: run uv run python scripts/gen_docs_config.py")


def test_check_mode_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gen.main(["--check"]) == 0
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n")
    monkeypatch.setattr(gen, "PAGE", stale)
    assert gen.main(["--check"]) == 1


def test_every_leaf_of_both_models_is_on_the_page() -> None:
    from qmtl.gateway.config import GatewaySettings
    from qmtl.worldservice.config import WorldServiceSettings

    def leaves(model: type[BaseModel], prefix: str) -> set[str]:
        # An independent walk: nested models by instantiating the defaults.
        out: set[str] = set()
        instance: Any = model()
        for name in model.model_fields:
            value = getattr(instance, name)
            if isinstance(value, BaseModel):
                out |= leaves(type(value), f"{prefix}.{name}")
            elif name == "venue_policies":
                out |= leaves(type(instance.default_venue_policy), f"{prefix}.{name}.<venue>")
            else:
                out.add(f"{prefix}.{name}")
        return out

    expected = (leaves(WorldServiceSettings, "worldservice.server")
                | leaves(GatewaySettings, "gateway"))
    assert set(gen.all_keys()) == expected
    page = gen.PAGE.read_text()
    for key in expected:
        section = "worldservice.server" if key.startswith("worldservice.") else "gateway"
        assert f"| `{key[len(section) + 1:]}` |" in page, key


def test_defaults_on_the_page_match_the_models() -> None:
    page = gen.PAGE.read_text()
    # Spot checks written by hand from SPEC §5 (not from the generator).
    for row in ("| `compat_rebalance_v2` | bool | `false` |",
                "| `rebalance_schema_version` | int (≥ 1, ≤ 2) | `1` |",
                "| `enforce_live_guard` | bool | `true` |",
                "| `bind.port` | int (≥ 1, ≤ 65,535) | `8080` |",
                "| `bind.port` | int (≥ 1, ≤ 65,535) | `8000` |",
                "| `commit_log` | str | `sqlite:///./.qmtl/commitlog.db` |"):
        assert row in page, row


def test_a_key_without_an_effect_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    effects = dict(gen.EFFECTS)
    del effects["gateway.enforce_live_guard"]
    monkeypatch.setattr(gen, "EFFECTS", effects)
    with pytest.raises(SystemExit, match="gateway.enforce_live_guard"):
        gen.render()


def test_an_effect_for_a_missing_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gen, "EFFECTS", {**gen.EFFECTS, "gateway.no_such_key": "x"})
    with pytest.raises(SystemExit, match="gateway.no_such_key"):
        gen.render()
