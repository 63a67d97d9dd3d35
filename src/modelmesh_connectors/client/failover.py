"""Retry rounds over a mirror list: a dead mirror costs nothing, retries go round the list.

The fetcher never retries a URL whose server could not be reached (connection refused,
unreachable, DNS failure, connect timeout) or that ran out of time: it raises at once, and the
loop over mirrors moves on to the next mirror immediately. Only when every mirror of a round
failed does :class:`Failover` wait (capped exponential backoff with jitter) and offer the
mirrors that failed that way again, up to ``retries`` more rounds. Stops a dead first mirror
from costing seconds of backoff before a healthy second mirror is tried, and a drip-feeding
mirror from being retried while others are untried.

Every mirror loop of the client (the index refresh, a node, an archive) is one call of
:meth:`Failover.first`, so they share one rule for what the caller sees when every mirror
failed: the *first* trust failure if there was one (a mirror that served bad data is the
news, not the dead mirror after it), else a download error listing every mirror::

    data = failover.first(mirrors, lambda m: fetch(m), what="index/g/ab.json",
                          name=lambda m: m.url, when_none=lambda: DownloadError("offline"))
"""

from __future__ import annotations

__all__ = ["Failover", "backoff_delay"]

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import (
    ConnectorError,
    DownloadError,
    TransferTimeoutError,
    TrustError,
    UnreachableError,
)

_log = logging.getLogger(__name__)

_M = TypeVar("_M")
_R = TypeVar("_R")


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry).

    Capped exponential growth with jitter: ``base * 2**(attempt-1)``, at most ``cap``, then
    a random point in its upper half (spreads the retries of many clients after an outage;
    not security-relevant, so the plain PRNG is fine).
    """
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    import random  # deferred: only a retry needs it (~1 ms of every start otherwise)

    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time, so tests can patch time.sleep


class Failover(Frozen):
    """How often and how patiently a mirror loop goes round its list.

    Attributes:
        retries: Extra rounds after the first (0: every mirror is tried once).
        backoff_base: Seconds before the second round; doubles per round.
        backoff_max: Seconds, cap of one wait.
        sleep: Waits between rounds (tests inject a recorder).
    """

    __slots__ = ("backoff_base", "backoff_max", "retries", "sleep")
    _hidden = frozenset({"sleep"})  # not compared or shown, like field(compare=False)

    retries: int  # extra rounds over the mirror list
    backoff_base: float  # seconds before the second round
    backoff_max: float  # seconds, cap on one wait
    sleep: Callable[[float], None]

    def __init__(
        self,
        retries: int = 0,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        sleep: Callable[[float], None] = _sleep,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "retries", retries)
        setattr_(self, "backoff_base", backoff_base)
        setattr_(self, "backoff_max", backoff_max)
        setattr_(self, "sleep", sleep)

    def start(self) -> _Rounds:
        """A fresh tracker for one hand-written loop (prefer :meth:`first`)."""
        return _Rounds(self)

    def first(
        self,
        mirrors: Sequence[_M],
        attempt: Callable[[_M], _R],
        *,
        what: str,
        name: Callable[[_M], str],
        when_none: Callable[[], ConnectorError],
        hint: str | None = None,
    ) -> _R:
        """The result of the first mirror for which ``attempt`` succeeds, round after round.

        A mirror whose attempt raises :class:`~modelmesh_connectors.errors.TrustError` or
        :class:`~modelmesh_connectors.errors.DownloadError` is logged and passed over (it can
        delay a load, never poison it); any other error ends the loop at once.

        Args:
            mirrors: Where to try, in order of preference.
            attempt: Does the work against one mirror.
            what: Names the file or state in messages (``acme-audit 1.2.0``).
            name: A mirror's name in messages (credentials redacted).
            when_none: The error when no mirror could be tried at all (offline).
            hint: The download error's hint when the last failure carried none.

        Returns:
            What ``attempt`` returned.

        Raises:
            TrustError: Every mirror failed and at least one served untrustworthy data: the
                first such error's type and hint, naming every mirror's failure.
            DownloadError: Every mirror failed to answer; chained to the last failure.
            ConnectorError: ``when_none()``, when ``mirrors`` is empty.
        """
        rounds = self.start()
        failures: list[str] = []
        first_trust: TrustError | None = None
        last_download: DownloadError | None = None
        for mirror in rounds.over(mirrors):
            try:
                return attempt(mirror)
            except (TrustError, DownloadError) as exc:
                rounds.failed(mirror, exc)
                _log.warning("%s: mirror %s failed: %s", what, name(mirror), exc)
                failures.append(f"{name(mirror)}: {exc}")
                if isinstance(exc, TrustError):
                    first_trust = first_trust or exc
                else:
                    last_download = exc
        if first_trust is not None:
            raise type(first_trust)(
                f"{what}: {first_trust.message} (every mirror failed: {'; '.join(failures)})",
                hint=first_trust.hint,
            ) from first_trust
        if not failures:
            raise when_none()
        raise DownloadError(
            f"{what}: no mirror served it: " + "; ".join(failures),
            hint=(last_download.hint if last_download is not None else None) or hint,
        ) from last_download


class _Rounds:
    def __init__(self, policy: Failover) -> None:
        self._policy = policy
        self._again: list[object] = []
        self._stop = False

    def over(self, mirrors: Sequence[_M]) -> Iterator[_M]:
        """Every mirror once, then (after a wait) those that may recover, round after round."""
        current: list[_M] = list(mirrors)
        for round_no in range(self._policy.retries + 1):
            if round_no:
                if self._stop or not current:
                    return
                delay = backoff_delay(
                    round_no, base=self._policy.backoff_base, cap=self._policy.backoff_max
                )
                _log.warning(
                    "no mirror answered; trying %d again in %.2fs (round %d of %d)",
                    len(current),
                    delay,
                    round_no + 1,
                    self._policy.retries + 1,
                )
                self._policy.sleep(delay)
            self._again = []
            yield from current
            current = [m for m in current if m in self._again]

    def failed(self, mirror: object, exc: BaseException) -> None:
        """Record a mirror's failure; only unreachable or timed-out mirrors get another round.

        A run-deadline expiry ends the rounds: there is no time left for another one.
        """
        if isinstance(exc, TransferTimeoutError) and exc.run:
            self._stop = True
        elif isinstance(exc, UnreachableError | TransferTimeoutError):
            self._again.append(mirror)
