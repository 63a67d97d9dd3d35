"""One redaction for every URL shown or stored: logs, errors, ``--json``, lock files, cache names.

Stops credential leaks: URL user info and query values (tokens, presigned signatures) never
leave the process in a message or on disk.
"""

from __future__ import annotations

import functools
import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_text", "redact_url"]

_MASK: Final = "***"


@functools.cache
def _userinfo_in_text() -> re.Pattern[str]:
    """scheme://<userinfo>@ in free text; userinfo may not contain "/", "@" or whitespace.

    Compiled on first use: most runs redact no free text, and compiling it cost every start
    that imports the client ~0.3 ms (issue 14).
    """
    return re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s'\"<>]+@")


def redact_url(url: str) -> str:
    """The URL as it may be shown or stored: user info and query values masked.

    ``https://user:secret@h/p?token=abc&v=1#frag`` becomes ``https://***@h/p?token=***&v=***#frag``.
    Idempotent; a string that does not parse as a URL is scrubbed with :func:`redact_text`.

    Args:
        url: Any URL (absolute or not).

    Returns:
        The redacted URL.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = _MASK + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        # Presigned URLs carry their secret in the query (X-Amz-Signature, token=…).
        query = "&".join(
            (item.partition("=")[0] + "=" + _MASK) if item else item for item in query.split("&")
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Mask every ``scheme://user:pass@`` in free text (a message, a log line).

    Args:
        text: Any text.

    Returns:
        The text with URL user info replaced by ``***``.
    """
    return _userinfo_in_text().sub(lambda m: m.group(1) + _MASK + "@", text)
