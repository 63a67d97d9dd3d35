"""Recovery: return a standby model to service once its cooldown has passed."""

from __future__ import annotations

from collections.abc import Callable

from modelmesh.interfaces.rotation import (
    DeactivationReason,
    ModelState,
    ModelStatus,
    RecoveryPolicy,
)

from .config import WeightedRotationConfig

__all__ = ["CooldownRecovery"]


class CooldownRecovery(RecoveryPolicy):
    """Recover standby models ``cooldown_seconds`` after their last failure.

    An explicit ``cooldown_until`` on the state wins over the computed time. Models
    benched by hand (``DeactivationReason.MANUAL``) never recover on their own. A
    standby model with neither timestamp recovers at once, as ModelMesh's base
    recovery policy does: there is nothing to wait for.

    Args:
        config: The shared rotation configuration (``cooldown_seconds``).
        clock: Returns the current time in seconds since the epoch (``time.time``).
    """

    def __init__(self, config: WeightedRotationConfig, clock: Callable[[], float]) -> None:
        self._cooldown = config.cooldown_seconds
        self._clock = clock

    def should_recover(self, state: ModelState) -> bool:
        """Return True if *state* is in standby and its recovery time has come."""
        due = self.get_recovery_schedule(state)
        return due is not None and self._clock() >= due

    def get_recovery_schedule(self, state: ModelState) -> float | None:
        """Return when *state* may recover (epoch seconds), or ``None`` if never/not benched."""
        if state.status is not ModelStatus.STANDBY:
            return None
        if state.deactivation_reason is DeactivationReason.MANUAL:
            return None
        if state.cooldown_until is not None:
            return state.cooldown_until
        if state.last_failure_at is not None:
            return state.last_failure_at + self._cooldown
        return self._clock()
