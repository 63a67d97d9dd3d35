"""Deactivation: bench an active model after N consecutive failures."""

from __future__ import annotations

from modelmesh.interfaces.rotation import (
    DeactivationPolicy,
    DeactivationReason,
    ModelState,
    ModelStatus,
)

from .config import WeightedRotationConfig

__all__ = ["ConsecutiveFailureDeactivation"]


class ConsecutiveFailureDeactivation(DeactivationPolicy):
    """Move an active model to standby once ``failure_count`` reaches the threshold.

    Args:
        config: The shared rotation configuration (``failure_threshold``).
    """

    def __init__(self, config: WeightedRotationConfig) -> None:
        self._threshold = config.failure_threshold

    def should_deactivate(self, state: ModelState) -> bool:
        """Return True if *state* is active with ``failure_threshold`` or more failures."""
        return self.get_reason(state) is not None

    def get_reason(self, state: ModelState) -> DeactivationReason | None:
        """Return ``ERROR_THRESHOLD`` when :meth:`should_deactivate` holds, else ``None``."""
        if state.status is ModelStatus.ACTIVE and state.failure_count >= self._threshold:
            return DeactivationReason.ERROR_THRESHOLD
        return None
