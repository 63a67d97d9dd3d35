"""Deterministic, offline echo provider for ModelMesh (connector ``demo.echo.v1``)."""

from __future__ import annotations

from .config import EchoConfig, InvalidEchoConfig
from .provider import CHAT_COMPLETION, EchoProvider, QuotaExceededError, UnknownModelError

__all__ = [
    "CHAT_COMPLETION",
    "EchoConfig",
    "EchoProvider",
    "InvalidEchoConfig",
    "QuotaExceededError",
    "UnknownModelError",
]
