"""The rotation connector: one object bundling deactivation, recovery and selection.

Shaped like ModelMesh's ``StickUntilFailurePolicy``: the three components are exposed
as the ``deactivation``, ``recovery`` and ``selection`` properties.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from .config import WeightedRotationConfig
from .deactivation import ConsecutiveFailureDeactivation
from .recovery import CooldownRecovery
from .selection import WeightedSelection

__all__ = ["WeightedRotationPolicy"]


class WeightedRotationPolicy:
    """Weighted selection, N-consecutive-failure deactivation, cooldown recovery.

    Connector ID: ``demo.weighted-rotation.v1``. To use the selection inside
    ModelMesh 0.1.1, hand it to a pool: ``mesh.pools[pool_id].set_strategy(
    policy.selection)`` (ModelMesh's pools do not consult deactivation or recovery
    policies themselves; they bench a model after ``failure_threshold`` failures of
    their own configuration).

    Args:
        config: Optional mapping with keys ``weights`` (model ID → number),
            ``default_weight``, ``seed``, ``failure_threshold`` and
            ``cooldown_seconds``; see :class:`~.config.WeightedRotationConfig`.
        clock: Current time in epoch seconds, for recovery (default ``time.time``).

    Raises:
        InvalidRotationConfig: if *config* is malformed.
    """

    CONNECTOR_ID: str = "demo.weighted-rotation.v1"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = WeightedRotationConfig.from_mapping(config)
        self._deactivation = ConsecutiveFailureDeactivation(self._config)
        self._recovery = CooldownRecovery(self._config, clock)
        self._selection = WeightedSelection(self._config)

    @property
    def config(self) -> WeightedRotationConfig:
        """The validated configuration."""
        return self._config

    @property
    def deactivation(self) -> ConsecutiveFailureDeactivation:
        """The deactivation component (a ModelMesh ``DeactivationPolicy``)."""
        return self._deactivation

    @property
    def recovery(self) -> CooldownRecovery:
        """The recovery component (a ModelMesh ``RecoveryPolicy``)."""
        return self._recovery

    @property
    def selection(self) -> WeightedSelection:
        """The selection component (a ModelMesh ``SelectionStrategy``)."""
        return self._selection
