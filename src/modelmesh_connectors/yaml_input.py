"""Reading YAML from untrusted or hand-written files: safe, bounded, and only typed errors.

``yaml.safe_load`` constructs no arbitrary objects, but it still raises foreign exceptions
(``ValueError`` from its scalar constructors, ``RecursionError`` on deep nesting) and expands
aliases, which lets a few hundred bytes stand for an enormous document ("billion laughs").
Aliases are refused here; they have no use in a manifest or a configuration.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["YamlInputError", "load_yaml", "short_repr"]

_MAX_REPR = 80  # characters of a value quoted in an error message


class YamlInputError(Exception):
    """The text is not acceptable YAML; ``str()`` says why."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors' aliases (stops alias amplification)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse one YAML document safely.

    Raises:
        YamlInputError: invalid YAML, an alias, nesting too deep, or a bad scalar.
    """
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise YamlInputError(str(exc)) from exc
    except RecursionError as exc:
        raise YamlInputError("nesting is too deep") from exc
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        # PyYAML's scalar constructors (dates, ints, bools) raise these directly.
        raise YamlInputError(f"invalid scalar value: {type(exc).__name__}: {exc}") from exc


def short_repr(value: object) -> str:
    """``repr(value)`` cut to a bounded length for error messages."""
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 1] + "…"
