"""Configuration of the echo provider, parsed from ModelMesh's plain mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["EchoConfig", "InvalidEchoConfig"]

_KNOWN_KEYS = frozenset({"prefix", "answers", "quota_tokens"})


class InvalidEchoConfig(ValueError):
    """The echo provider's configuration mapping holds an unknown key or a bad value."""


@dataclass(frozen=True)
class EchoConfig:
    """Settings of one :class:`~.provider.EchoProvider`.

    Attributes:
        prefix: Text put before the echoed prompt when no canned answer matches.
        answers: Canned answers, keyed by the exact text of the last user message.
        quota_tokens: Token budget (tokens, prompt + completion) after which requests
            fail with ``QuotaExceededError``; ``None`` means unlimited.
    """

    prefix: str = "echo: "  # text, prepended verbatim
    answers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    quota_tokens: int | None = None  # tokens; None = unlimited

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> EchoConfig:
        """Build a configuration from the mapping given to the connector.

        Args:
            raw: The connector's configuration, or ``None`` for all defaults.

        Returns:
            The validated configuration.

        Raises:
            InvalidEchoConfig: if a key is unknown or a value has the wrong type or range.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidEchoConfig(
                f"echo provider config must be a mapping, got {type(raw).__name__}"
            )
        unknown = sorted(str(key) for key in raw if key not in _KNOWN_KEYS)
        if unknown:
            raise InvalidEchoConfig(
                f"unknown echo provider config key(s) {unknown}: expected some of "
                f"{sorted(_KNOWN_KEYS)}"
            )
        prefix = raw.get("prefix", "echo: ")
        if not isinstance(prefix, str):
            raise InvalidEchoConfig(
                f"echo provider 'prefix' must be a string, got {type(prefix).__name__}"
            )
        answers = raw.get("answers", {})
        if not isinstance(answers, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in answers.items()
        ):
            raise InvalidEchoConfig(
                "echo provider 'answers' must map prompt strings to answer strings, "
                f"got {answers!r}"
            )
        quota = raw.get("quota_tokens")
        # bool is an int subclass; 'quota_tokens: true' is a mistake, not a budget of 1.
        if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool)):
            raise InvalidEchoConfig(
                f"echo provider 'quota_tokens' must be an integer or null, got {quota!r}"
            )
        if quota is not None and quota < 0:
            raise InvalidEchoConfig(f"echo provider 'quota_tokens' must be >= 0, got {quota}")
        return cls(prefix=prefix, answers=MappingProxyType(dict(answers)), quota_tokens=quota)
