"""Hypothesis profiles for the fuzz suite, chosen with ``MODELMESH_FUZZ_PROFILE``.

``dev`` (the default of a plain ``pytest`` run) tries 20 examples per test: the quick loop
while working. ``quick`` (what ``scripts/test.sh``, and so CI, sets) tries 60 and keeps the
folder well under a minute on two cores. Neither writes an example database (CI runs from a
clean checkout; nothing lands in the repository root).
``long`` runs at least 10,000 examples per test and keeps failing examples in a database
under the system temp directory (``MODELMESH_FUZZ_DB`` overrides the place), so a failure
found overnight replays on the next run.

The profile is loaded for the whole session: other hypothesis tests that set their own
``max_examples`` keep it, and they inherit ``database=None`` in ``quick``, which is wanted.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_ENV = "MODELMESH_FUZZ_PROFILE"
DATABASE_ENV = "MODELMESH_FUZZ_DB"
LONG_TIMEOUT = 3600  # seconds per test in the long profile (pyproject's default is 300)

_HERE = Path(__file__).resolve().parent

settings.register_profile(
    "dev",
    max_examples=20,  # examples per test
    deadline=None,
    database=None,
    print_blob=True,
)
settings.register_profile(
    "quick",
    max_examples=60,  # examples per test
    deadline=None,  # shared CI runners are too noisy for per-example deadlines
    database=None,
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=10_000,  # examples per test
    deadline=None,
    database=DirectoryBasedExampleDatabase(
        os.environ.get(DATABASE_ENV)
        or str(Path(tempfile.gettempdir()) / "modelmesh-connectors-fuzz-db")
    ),
    print_blob=True,
)

PROFILE = os.environ.get(PROFILE_ENV, "dev")
if PROFILE not in ("dev", "quick", "long"):
    raise pytest.UsageError(f"{PROFILE_ENV}: expected 'dev', 'quick' or 'long', got {PROFILE!r}")
settings.load_profile(PROFILE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the long profile, lift pytest-timeout's per-test cap for the fuzz tests only."""
    del config
    if PROFILE != "long":
        return
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT))
