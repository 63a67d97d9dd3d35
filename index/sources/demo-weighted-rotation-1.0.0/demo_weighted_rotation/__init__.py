"""Weighted rotation policy for ModelMesh (connector ``demo.weighted-rotation.v1``)."""

from __future__ import annotations

from .config import InvalidRotationConfig, WeightedRotationConfig
from .deactivation import ConsecutiveFailureDeactivation
from .policy import WeightedRotationPolicy
from .recovery import CooldownRecovery
from .selection import WeightedSelection

__all__ = [
    "ConsecutiveFailureDeactivation",
    "CooldownRecovery",
    "InvalidRotationConfig",
    "WeightedRotationConfig",
    "WeightedRotationPolicy",
    "WeightedSelection",
]
