"""`qmtl.contracts.__all__` lists exactly the public names (as httpx tests its exports)."""

from __future__ import annotations

import qmtl.contracts


def test_all_public_names_are_exported() -> None:
    # `annotations` is the __future__ feature flag bound by the package's own import.
    public = {n for n in dir(qmtl.contracts) if not n.startswith("_")} - {"annotations"}
    # Module objects pulled in by the star-imports are not part of the API.
    modules = {name for name in public if type(getattr(qmtl.contracts, name)).__name__ == "module"}
    assert set(qmtl.contracts.__all__) == (public - modules) | {"errors"}


def test_classes_report_the_package_as_their_module() -> None:
    assert qmtl.contracts.MultiWorldRebalanceRequest.__module__ == "qmtl.contracts"
    assert qmtl.contracts.CloudEvent.__module__ == "qmtl.contracts"


def test_contracts_import_no_web_database_or_network_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qmtl.contracts; "
        "bad = [m for m in ('fastapi', 'starlette', 'sqlalchemy', 'httpx', 'redis', 'numpy') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""
