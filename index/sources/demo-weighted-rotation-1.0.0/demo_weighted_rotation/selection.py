"""Selection: draw an active model at random, in proportion to its configured weight."""

from __future__ import annotations

import random
import threading

from modelmesh.interfaces.provider import CompletionRequest
from modelmesh.interfaces.rotation import ModelState, ModelStatus, SelectionStrategy

from .config import WeightedRotationConfig

__all__ = ["WeightedSelection"]


class WeightedSelection(SelectionStrategy):
    """Pick among active candidates with probability ``weight / sum(weights)``.

    Candidates are ordered by model ID before each draw, so with a fixed ``seed`` the
    sequence of choices depends only on the candidate set and the number of draws
    so far, not on the order ModelMesh lists them in. Standby models and models of
    weight 0 are never picked.

    Args:
        config: The shared rotation configuration (``weights``, ``default_weight``,
            ``seed``).
    """

    def __init__(self, config: WeightedRotationConfig) -> None:
        self._config = config
        # Load balancing, not security: a seedable PRNG is what makes draws reproducible.
        self._random = random.Random(config.seed)  # noqa: S311
        self._lock = threading.Lock()

    def select(self, candidates: list[ModelState], request: CompletionRequest) -> ModelState | None:
        """Draw one candidate.

        Args:
            candidates: Every model of the pool, active or not (ModelMesh passes all).
            request: The request being routed (not used for the draw).

        Returns:
            The chosen candidate, or ``None`` if no active candidate has a positive weight.
        """
        weighted = [
            (state, weight)
            for state in sorted(candidates, key=lambda s: s.model_id)
            if (weight := self.score(state, request)) > 0
        ]
        if not weighted:
            return None
        total = sum(weight for _, weight in weighted)
        with self._lock:  # one draw per call, in call order, even across threads
            point = self._random.random() * total
        for state, weight in weighted:
            point -= weight
            if point < 0:
                return state
        return weighted[-1][0]  # float rounding left point at ~0 past the last bucket

    def score(self, state: ModelState, request: CompletionRequest) -> float:
        """Return the candidate's weight if it is active, else 0.

        Args:
            state: One candidate.
            request: The request being routed (not used).

        Returns:
            The configured (or default) weight, or 0.0 for standby models.
        """
        if state.status is not ModelStatus.ACTIVE:
            return 0.0
        return self._config.weight_of(state.model_id)
