"""Configuration of the weighted rotation policy, parsed from ModelMesh's plain mapping."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["InvalidRotationConfig", "WeightedRotationConfig"]

_KNOWN_KEYS = frozenset(
    {"weights", "default_weight", "seed", "failure_threshold", "cooldown_seconds"}
)


class InvalidRotationConfig(ValueError):
    """The rotation policy's configuration mapping holds an unknown key or a bad value."""


def _number(value: object, what: str) -> float:
    # bool is an int subclass, but 'true' is never meant as a weight or a duration.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRotationConfig(f"rotation {what} must be a finite number, got {value!r}")
    if value < 0:
        raise InvalidRotationConfig(f"rotation {what} must be >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class WeightedRotationConfig:
    """Settings shared by the three rotation components.

    Attributes:
        weights: Relative selection weight per pool model ID (as ModelMesh names it,
            e.g. ``echo.echo-1``); 0 means never selected.
        default_weight: Weight of models missing from ``weights``.
        seed: Seed of the selection's random generator; ``None`` seeds from the OS,
            an integer makes the sequence of choices reproducible.
        failure_threshold: Consecutive failures that move a model to standby.
        cooldown_seconds: Time a model stays in standby after its last failure.
    """

    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    default_weight: float = 1.0  # unitless relative weight
    seed: int | None = None  # None = nondeterministic
    failure_threshold: int = 3  # consecutive failures
    cooldown_seconds: float = 60.0  # seconds

    def weight_of(self, model_id: str) -> float:
        """Return the configured weight of *model_id*, or ``default_weight``."""
        return self.weights.get(model_id, self.default_weight)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> WeightedRotationConfig:
        """Build a configuration from the mapping given to the connector.

        Args:
            raw: The connector's configuration, or ``None`` for all defaults.

        Returns:
            The validated configuration.

        Raises:
            InvalidRotationConfig: if a key is unknown or a value has the wrong type
                or range (negative weights, threshold below 1 …).
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidRotationConfig(
                f"rotation config must be a mapping, got {type(raw).__name__}"
            )
        unknown = sorted(str(key) for key in raw if key not in _KNOWN_KEYS)
        if unknown:
            raise InvalidRotationConfig(
                f"unknown rotation config key(s) {unknown}: expected some of {sorted(_KNOWN_KEYS)}"
            )
        raw_weights = raw.get("weights", {})
        if not isinstance(raw_weights, Mapping):
            raise InvalidRotationConfig(
                f"rotation 'weights' must map model IDs to numbers, got {raw_weights!r}"
            )
        weights: dict[str, float] = {}
        for model_id, weight in raw_weights.items():
            if not isinstance(model_id, str):
                raise InvalidRotationConfig(
                    f"rotation 'weights' keys must be model ID strings, got {model_id!r}"
                )
            weights[model_id] = _number(weight, f"weight of {model_id!r}")
        seed = raw.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidRotationConfig(f"rotation 'seed' must be an integer or null, got {seed!r}")
        threshold = raw.get("failure_threshold", 3)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise InvalidRotationConfig(
                f"rotation 'failure_threshold' must be an integer >= 1, got {threshold!r}"
            )
        return cls(
            weights=MappingProxyType(weights),
            default_weight=_number(raw.get("default_weight", 1.0), "'default_weight'"),
            seed=seed,
            failure_threshold=threshold,
            cooldown_seconds=_number(raw.get("cooldown_seconds", 60.0), "'cooldown_seconds'"),
        )
