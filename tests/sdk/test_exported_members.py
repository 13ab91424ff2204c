"""``qmtl.sdk.__all__`` lists exactly the public names (httpx tests/test_exported_members.py)."""

from __future__ import annotations

import inspect

import qmtl.sdk


def test_all_public_names_are_exported() -> None:
    public = {n for n in dir(qmtl.sdk) if not n.startswith("_")} - {"annotations"}
    assert set(qmtl.sdk.__all__) == public


def test_all_has_no_duplicates() -> None:
    assert len(set(qmtl.sdk.__all__)) == len(qmtl.sdk.__all__)


def test_sdk_classes_and_functions_report_the_package_as_their_module() -> None:
    for name in qmtl.sdk.__all__:
        member = getattr(qmtl.sdk, name)
        if (inspect.isclass(member) or inspect.isfunction(member)) and name != "AlphaInputError":
            assert member.__module__ == "qmtl.sdk", name


def test_private_modules_are_not_public() -> None:
    assert all(not getattr(qmtl.sdk, n).__name__.startswith("qmtl.sdk._")
               for n in qmtl.sdk.__all__ if inspect.ismodule(getattr(qmtl.sdk, n)))
