"""Reading YAML from untrusted or hand-written files: safe, bounded, strict, only typed errors.

``yaml.safe_load`` constructs no arbitrary objects, but it still raises foreign exceptions
(``ValueError`` from its scalar constructors, ``RecursionError`` on deep nesting) and expands
aliases, which lets a few hundred bytes stand for an enormous document ("billion laughs").
Aliases are refused here; they have no use in a manifest or a configuration.

It also lets a later key silently replace an earlier one: ``require_signatures: true`` on
line 4 and ``require_signatures: false`` on line 7 load as ``false``, and a reviewer who reads
line 4 approves a weaker policy than the one in force. Every mapping here refuses a key that
is equal, *after YAML resolution*, to an earlier key of the same mapping (``1`` and ``0x1``,
``true`` and ``yes``, ``1`` and ``true`` all collide in a Python dict), naming both lines.
Merge keys (``<<``) are refused too: a merged mapping may define keys the mapping itself
overrides or is overridden by, with no line that shows the outcome.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "YamlInputError", "load_yaml", "short_repr"]

_MAX_REPR = 80  # characters of a value quoted in an error message
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlInputError(Exception):
    """The text is not acceptable YAML; ``str()`` says why (and where: file, line)."""


class DuplicateKeyError(YamlInputError):
    """A mapping holds the same key twice; ``str()`` names the key and both lines.

    Attributes:
        key: The (resolved) key.
        line: 1-based line of the repeated key.
        first_line: 1-based line of its first occurrence.
    """

    def __init__(self, key: object, line: int, first_line: int, spellings: str = "") -> None:
        super().__init__(
            f"duplicate key {short_repr(key)} at line {line} (first at line {first_line})"
            + spellings
        )
        self.key = key
        self.line = line
        self.first_line = first_line


# A UTF-16 surrogate code point is no character: PyYAML turns a "\uD800" escape into one,
# which no UTF-8 text (a release payload, a JSON report) can hold and which libyaml, the C
# parser other YAML readers of the same manifest use, refuses.


def _has_surrogate(value: str) -> bool:
    """Whether ``value`` holds a code point U+D800..U+DFFF.

    Strict UTF-8 encoding fails on exactly those code points, so this is the test without a
    regex over the 2,048 of them (compiling one cost every start ~0.15 ms); ASCII text,
    nearly every scalar, is answered without encoding.
    """
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, merge keys, duplicate keys or surrogate code points.

    Pure Python on purpose: libyaml (PyYAML's optional C parser) reads some documents
    differently (tabs, byte-order marks inside the text), so using it where it happens to
    be installed would let one manifest mean one thing to a publisher and another to a
    client. One parser everywhere keeps one meaning.
    """

    def construct_scalar(self, node: Any) -> Any:
        value = super().construct_scalar(node)
        if isinstance(value, str) and _has_surrogate(value):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "found a surrogate code point (U+D800..U+DFFF), which is no character",
                node.start_mark,
            )
        return value

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Refusing aliases stops alias amplification ("billion laughs").
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}  # resolved key -> its key node (for its line)
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    # A merge would let a key be set in two places with no error.
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "merge keys ('<<') are not allowed; write the keys out",
                        key_node.start_mark,
                    )
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the base constructor reports it
                if first is not None:
                    raise _duplicate(key, key_node, first)
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _duplicate(key: object, node: Any, first: Any) -> DuplicateKeyError:
    spellings = ""
    a, b = getattr(first, "value", None), getattr(node, "value", None)
    if isinstance(a, str) and isinstance(b, str) and a != b:
        # Different text, same key after resolution (1 / 0x1, yes / true).
        spellings = f": {short_repr(b)} and {short_repr(a)} are the same key"
    return DuplicateKeyError(key, node.start_mark.line + 1, first.start_mark.line + 1, spellings)


def load_yaml(text: str, *, source: str | None = None) -> Any:
    """Parse one YAML document safely and strictly.

    Args:
        text: The document.
        source: The file name used in error positions (default: PyYAML's
            ``<unicode string>``).

    Returns:
        The parsed value.

    Raises:
        DuplicateKeyError: A mapping repeats a key (after resolution); names both lines.
        YamlInputError: invalid YAML, an alias, a merge key, nesting too deep, or a bad
            scalar; positions name ``source``.
    """
    try:
        try:
            loader = _StrictLoader(text)
        except yaml.reader.ReaderError as exc:
            if source is not None:
                exc.name = source  # the reader names "<unicode string>" before we can rename
            raise
        if source is not None:
            loader.name = source  # every later mark (line, column) names the file
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
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
