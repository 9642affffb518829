"""The bounded YAML loader: a safe loader that counts while it composes (nesting depth, alias
uses, values, the length of every string), measures the document with every alias expanded
without expanding it, and refuses duplicate keys, boolean or null keys, NaN and infinity, and tags
that make non-JSON values; dates stay text. Part of the safe reading of input files
(:mod:`agentsim.scenario.safe_input` re-exports every name).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner
from yaml.nodes import MappingNode, Node, ScalarNode

from agentsim.errors import InputError
from agentsim.scenario.input_limits import LimitExceeded, Limits

__all__ = ["BoundedLoader", "PythonBoundedLoader", "parse_yaml"]


class _Refused(Exception):
    """A limit or rule broken inside the loader; turned into an InputError with the line."""

    def __init__(self, message: str, line: int | None, limit: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.limit = message, line, limit


def _line(node_or_event: Any) -> int | None:
    mark = getattr(node_or_event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


_JSON_TAGS = {
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value",
}


class _PythonEvents(Reader, Scanner, Parser):
    """PyYAML's pure-Python reader, scanner and parser (events only)."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


try:  # libyaml's parser makes the events (fast); composing and constructing stay in Python,
    # where they are counted.
    from yaml._yaml import CParser as _LibyamlEvents
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _LibyamlEvents = None


class _Bounded(Composer, SafeConstructor, Resolver):
    """A safe loader that refuses what :mod:`agentsim.scenario.safe_input` describes, over an
    event parser given by a subclass. Composer comes before the parser in the subclasses so
    that its (Python) compose methods, which this class counts in, are used rather than
    libyaml's."""

    _events: Any = None

    def __init__(self, stream: str, limits: Limits) -> None:
        self._events.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.limits = limits
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._open_anchors: set[str] = set()

    # Composition: counted before each node is built.
    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        limits = self.limits
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > limits.aliases:
                raise _Refused(f"more than {limits.aliases} aliases (*name): an alias bomb?",
                               _line(event), "aliases")
            if event.anchor in self._open_anchors:
                raise _Refused(f"recursive alias *{event.anchor} (it refers to a value that "
                               "contains it)", _line(event))
            return super().compose_node(parent, index)
        self._nodes += 1
        if self._nodes > limits.nodes:
            raise _Refused(f"more than {limits.nodes:,} values", _line(event), "nodes")
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > limits.string_chars:
            raise _Refused(f"a string of {len(event.value):,} characters, the limit is "
                           f"{limits.string_chars:,}", _line(event), "string_chars")
        self._depth += 1
        if self._depth > limits.depth:
            raise _Refused(f"nested deeper than {limits.depth} levels", _line(event), "depth")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self._check_expansion(node)
        return self.construct_document(node)

    def _check_expansion(self, root: Node) -> None:
        """Values, characters and depth of the document with every alias expanded, computed
        over the node graph (each shared node once), so nothing is expanded to measure it."""
        limits = self.limits
        memo: dict[int, tuple[int, int, int]] = {}
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            if id(node) in memo:
                continue
            if isinstance(node, ScalarNode):
                memo[id(node)] = (1, len(node.value), 1)
                continue
            if isinstance(node, MappingNode):
                children = [child for pair in node.value for child in pair]
            else:
                children = list(node.value)
            if not children_done:
                stack.append((node, True))
                stack.extend((child, False) for child in children if id(child) not in memo)
                continue
            sizes = [memo[id(child)] for child in children]
            count = 1 + sum(s[0] for s in sizes)
            chars = sum(s[1] for s in sizes)
            depth = 1 + max((s[2] for s in sizes), default=0)
            if count > limits.nodes:
                raise _Refused(f"with its aliases expanded the file holds more than "
                               f"{limits.nodes:,} values (an alias bomb?)", _line(node), "nodes")
            if chars > limits.expanded_chars:
                raise _Refused(f"with its aliases expanded the file holds more than "
                               f"{limits.expanded_chars:,} characters of text (an alias bomb?)",
                               _line(node), "expanded_chars")
            if depth > limits.depth:
                raise _Refused(f"with its aliases expanded the file is nested deeper than "
                               f"{limits.depth} levels", _line(node), "depth")
            memo[id(node)] = (count, chars, depth)

    # Construction: JSON-like values only, no duplicate keys.
    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node.tag not in _JSON_TAGS:
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused(f"tag {shown} is not allowed (scenario files hold text, numbers, "
                           "true/false, null, lists and mappings)", _line(node))
        value = super().construct_object(node, deep)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refused(f"{node.value!r}: NaN and infinity are not allowed", _line(node))
        return value

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            first_line: dict[Any, int | None] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, bool) or key is None:
                    # ``yes:``, ``on:``, ``~:`` are YAML surprises, never meant as keys.
                    raise _Refused(f"mapping key {key_node.value!r} reads as {key!r}, not as text "
                                   "(quote it: YAML reads yes/no/on/off/true/false as booleans "
                                   "and ~ or null as nothing)", _line(key_node))
                if not isinstance(key, (str, int, float)):
                    raise _Refused("a mapping key must be text or a number, not a list or "
                                   "mapping", _line(key_node))
                if key in first_line:
                    raise _Refused(f"duplicate key {key!r} (first on line {first_line[key]})",
                                   _line(key_node))
                first_line[key] = _line(key_node)
        return super().construct_mapping(node, deep)


# Dates and times stay text: a scenario holds no datetime objects (they would not survive JSON).
_Bounded.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


class PythonBoundedLoader(_Bounded, _PythonEvents):
    """The bounded loader over PyYAML's pure-Python parser."""

    _events = _PythonEvents


if _LibyamlEvents is not None:
    class LibyamlBoundedLoader(_Bounded, _LibyamlEvents):
        """The bounded loader over libyaml's parser (about five times faster)."""

        _events = _LibyamlEvents

    BoundedLoader: type[_Bounded] = LibyamlBoundedLoader
else:  # pragma: no cover
    BoundedLoader = PythonBoundedLoader


def parse_yaml(text: str, source: str | Path, limits: Limits | None = None, *,
               loader_class: type[_Bounded] | None = None) -> Any:
    """Parse YAML text under ``limits``; InputError (with the line) for anything refused."""
    limits = limits or Limits.from_env()
    loader = (loader_class or BoundedLoader)(text, limits)
    try:
        return loader.get_single_data()
    except _Refused as refused:
        if refused.limit is not None:
            raise LimitExceeded(refused.message, limit=refused.limit, source=source,
                                line=refused.line) from None
        raise InputError(refused.message, source=source, line=refused.line) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        if "maximum nesting depth" in (error.problem or ""):
            # libyaml's own bound (1000 levels) met while it scanned ahead: deeper than ours.
            raise LimitExceeded(f"nested deeper than {limits.depth} levels", limit="depth",
                                source=source, line=line) from None
        problem = ", ".join(part for part in (error.context, error.problem) if part) or str(error)
        raise InputError(f"not valid YAML: {problem}", source=source, line=line) from None
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML: {error}", source=source) from None
    except RecursionError:  # defence in depth: the depth limit stops nesting long before
        raise LimitExceeded("nested too deeply", limit="depth", source=source) from None
    finally:
        loader.dispose()
