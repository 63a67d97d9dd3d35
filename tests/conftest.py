"""Suite-wide fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def no_fsync() -> Iterator[None]:
    """``os.fsync`` returns at once in the test processes.

    Durability against power loss is not something a test can observe, and a publish makes
    about twenty fsyncs (~2 ms each on a loaded disk): across the suite that is tens of seconds
    of waiting for nothing. The code still calls it (and coverage still counts the call);
    subprocesses (CLI runs, the crash tests' children) keep the real one.
    """
    real = os.fsync

    def skip(fd: object) -> None:
        del fd

    os.fsync = skip
    try:
        yield
    finally:
        os.fsync = real
