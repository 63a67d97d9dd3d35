"""Leaves the canary's marker at import time; see the package docstring."""

from __future__ import annotations

import os

__all__ = ["CANARY_ENV_VAR"]

CANARY_ENV_VAR = "MODELMESH_CANARY_PATH"


def _leave_marker() -> None:
    path = os.environ.get(CANARY_ENV_VAR)
    if path:
        with open(path, "a", encoding="utf-8") as marker:
            marker.write(f"{__package__}\n")


_leave_marker()
