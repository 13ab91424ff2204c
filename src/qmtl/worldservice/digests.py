"""The apply request digest: when two apply bodies are "the same request" for one run_id.

A replayed run_id is answered from the store only when the body's digest equals the stored
one; otherwise it is a 409. The digest is taken over the *validated* request (the model
normalises mode case, null optionals, unknown fields, ``1`` vs ``1.0``) and over the
positions as columns (:class:`~qmtl.engine.book.PositionBook`), so it never needs a Python
object per position and the fast JSON reader, the pydantic fallback and Arrow bodies all give
the same digest for the same positions.

Two formats live in ``runs.request_hash`` (``String(64)``):

* **columnar** (this release): ``"c1:"`` + the first 61 hex digits (244 bits) of SHA-256 over
  a header line, the canonical JSON of the request without ``run_id`` and ``positions`` plus
  the used category lists (worlds, strategies, netting keys) and the position count, then
  the per-position codes (int64) and ``qty`` / ``mark`` (float64, little-endian; ``-0.0``
  counted as ``0.0``: it plans identically). Position order counts, as it did before.
* **legacy** (releases up to f4cf00e): 64 lowercase hex digits, SHA-256 of the canonical
  JSON of ``request.model_dump(mode="json", exclude={"run_id"})``. It is recomputed — from
  the columns, per position, so slowly — only when a stored run holds this format and the
  columnar digest cannot match it, so a run applied before the upgrade still replays.

Why a distinguishable 64-character format and not a migration widening the column: the
``":"`` can never occur in the legacy hex, so one look at the stored value says which digest
to compare; no ALTER runs against a large ``runs`` table on SQLite or PostgreSQL, and a
database can still be opened by the previous release (which then answers a replay of a run
applied by this one with 409 rather than failing on a longer value).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from qmtl.contracts import MultiWorldRebalanceRequest, canonical_data_json, sha256_hex
from qmtl.engine.book import IntArray, PositionBook
from qmtl.web.gcpause import gc_paused

from .planning import OFFLOAD_POSITIONS

__all__ = ["COLUMNAR_PREFIX", "digest_matches", "is_legacy_digest", "legacy_digest",
           "request_digest"]

COLUMNAR_PREFIX = "c1:"
"""Marks a columnar digest (never part of a legacy digest, which is hex only)."""

_HEADER = b"qmtl.apply-request.c1\n"
_LEGACY = re.compile(r"[0-9a-f]{64}")


def _used(categories: tuple[Any, ...], codes: Any) -> tuple[list[Any], IntArray]:
    """The categories some position uses, and codes into that list (O(n + c)).

    A book's categories are sorted, so the used ones are too: the result does not depend
    on whether the book carried unused categories.
    """
    codes = np.asarray(codes, dtype=np.int64)
    present = np.bincount(codes, minlength=len(categories)) > 0
    remap = np.cumsum(present, dtype=np.int64) - 1
    used = [c for c, p in zip(categories, present.tolist(), strict=True) if p]
    return used, remap[codes]


def request_digest(request: MultiWorldRebalanceRequest, book: PositionBook) -> str:
    """The columnar digest of ``request`` (its ``positions`` ignored) with ``book``'s positions.

    O(n) numpy work plus hashing about 40 bytes per position.
    """
    worlds, world = _used(book.worlds, book.world)
    strategies, strategy = _used(book.strategies, book.strategy)
    keys, key = _used(book.keys, book.key)
    head = {
        "request": request.model_dump(mode="json", exclude={"run_id", "positions"}),
        "worlds": worlds,
        "strategies": strategies,
        "keys": [list(k) for k in keys],
        "positions": len(book),
    }
    digest = hashlib.sha256(_HEADER)
    digest.update(canonical_data_json(head))
    for codes in (world, strategy, key):
        digest.update(np.ascontiguousarray(codes, dtype="<i8").data)
    digest.update(np.ascontiguousarray(np.asarray(book.qty) + 0.0, dtype="<f8").data)
    digest.update(np.ascontiguousarray(book.mark, dtype="<f8").data)
    return COLUMNAR_PREFIX + digest.hexdigest()[: 64 - len(COLUMNAR_PREFIX)]


def is_legacy_digest(value: str) -> bool:
    """True for a digest stored by a release before the columnar one (64 lowercase hex)."""
    return _LEGACY.fullmatch(value) is not None


def legacy_digest(request: MultiWorldRebalanceRequest, book: PositionBook) -> str:
    """The digest releases up to f4cf00e stored (``apply.request_hash`` then): SHA-256 of
    the canonical JSON of the request's ``model_dump`` without ``run_id``, the positions
    rebuilt from ``book`` as ``PositionSlice.model_dump`` gives them. One dict per position:
    only for replays of runs stored in that format.
    """
    dumped = request.model_dump(mode="json", exclude={"run_id", "positions"})
    worlds, strategies, keys = book.worlds, book.strategies, book.keys
    with gc_paused(len(book) > OFFLOAD_POSITIONS):  # a dict per position: spare the cyclic GC
        dumped["positions"] = [
            {"world_id": worlds[w], "strategy_id": strategies[s], "symbol": keys[k][1],
             "qty": q, "mark": m, "venue": keys[k][0]}
            for w, s, k, q, m in zip(np.asarray(book.world).tolist(),
                                     np.asarray(book.strategy).tolist(),
                                     np.asarray(book.key).tolist(),
                                     np.asarray(book.qty).tolist(),
                                     np.asarray(book.mark).tolist(), strict=True)
        ]
        return sha256_hex(dumped)


def digest_matches(stored: str, digest: str, request: MultiWorldRebalanceRequest,
                   book: PositionBook) -> bool:
    """Whether a stored run's digest is this request's: ``digest`` (columnar) when the
    stored one is columnar, :func:`legacy_digest` when it is legacy."""
    if stored == digest:
        return True
    return is_legacy_digest(stored) and stored == legacy_digest(request, book)
