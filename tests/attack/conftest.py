"""Fixtures shared by the adversarial suite: loopback-only name resolution and the canary."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.attack.hostile import CANARY_ENV

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse (and record) every name lookup of a host that is not loopback.

    The suite never talks to anything off the machine; a test about a non-loopback URL
    asserts this list stays empty, proving the URL was refused before any connection.
    """
    seen: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK:
            seen.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"attack suite: no lookup of {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return seen


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The marker file the canary package writes when its code is imported (absent = good)."""
    marker = tmp_path / "canary-marker.txt"
    monkeypatch.setenv(CANARY_ENV, str(marker))
    return marker
