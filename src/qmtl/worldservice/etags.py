"""``If-Match`` parsing and the ``ETag`` header form of an allocation etag."""

from __future__ import annotations

__all__ = ["etag_header", "if_match_allows"]


def etag_header(etag: str) -> str:
    """The strong ``ETag`` header value (quoted, RFC 9110) of a bare etag."""
    return f'"{etag}"'


def _bare(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':
        tag = tag[1:-1]
    return tag


def if_match_allows(header: str | None, current: str) -> bool:
    """Whether an ``If-Match`` header admits the ``current`` etag.

    ``None`` (no header) and ``*`` admit anything; otherwise any listed tag — quoted or
    bare, weak prefix ignored — must equal ``current``.
    """
    if header is None:
        return True
    tags = [_bare(part) for part in header.split(",") if part.strip()]
    return "*" in tags or current in tags
