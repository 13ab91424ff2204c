"""The wire contract shared by the WorldService, the Gateway and the SDK (SPEC 2).

This package is the single home of every wire shape; it imports no web framework,
database or network library.
"""

from __future__ import annotations

from . import errors as errors
from ._allocations import *  # noqa: F403
from ._allocations import __all__ as _allocations_all
from ._alpha import *  # noqa: F403
from ._alpha import __all__ as _alpha_all
from ._audit import *  # noqa: F403
from ._audit import __all__ as _audit_all
from ._canonical import *  # noqa: F403
from ._canonical import __all__ as _canonical_all
from ._events import *  # noqa: F403
from ._events import __all__ as _events_all
from ._health import *  # noqa: F403
from ._health import __all__ as _health_all
from ._orders import *  # noqa: F403
from ._orders import __all__ as _orders_all
from ._request import *  # noqa: F403
from ._request import __all__ as _request_all
from ._response import *  # noqa: F403
from ._response import __all__ as _response_all
from ._schemas import *  # noqa: F403
from ._schemas import __all__ as _schemas_all
from ._types import *  # noqa: F403
from ._types import __all__ as _types_all
from ._versioning import *  # noqa: F403
from ._versioning import __all__ as _versioning_all

__all__ = sorted(
    [
        "errors",
        *_alpha_all,
        *_allocations_all,
        *_audit_all,
        *_canonical_all,
        *_events_all,
        *_health_all,
        *_orders_all,
        *_request_all,
        *_response_all,
        *_schemas_all,
        *_types_all,
        *_versioning_all,
    ]
)

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("qmtl.contracts._"):
        try:
            _obj.__module__ = "qmtl.contracts"
        except (AttributeError, TypeError):
            continue
