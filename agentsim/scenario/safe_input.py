"""Bounded, strict reading of the files users hand to agentsim (scenarios, catalogues, cases).

Every file is checked before or while it is parsed, so that no input can hang the loader or
exhaust memory, and nothing is silently reinterpreted:

* **Size**: the file's size is checked before it is read (and the read stops one byte past the
  limit, for files whose size the OS does not know).
* **Encoding**: UTF-8, with or without a byte-order mark. UTF-16/UTF-32 (byte-order marks), NUL
  bytes (binary files, BOM-less UTF-16), bytes that are not UTF-8 and control characters YAML
  forbids are errors that name the byte offset and line.
* **YAML**: a safe loader (no tags that build objects) that counts while it composes: nesting
  depth, alias uses, values, the length of every string; after composing, the size the document
  would have with every alias expanded is computed (without expanding it), so an alias bomb is
  refused before any object is built. A recursive alias, a duplicate mapping key (with both
  lines), a key that reads as a boolean or null (``yes:``, ``~:``), NaN or infinity, and tags that
  make non-JSON values (``!!binary``, ``!!set``, ``!!timestamp``, ...) are errors. Dates stay text.
* **JSON lines** (case files): one line at a time, with the same depth, value-count, string and
  duplicate-key checks, NaN/Infinity refused, and at most ``cases`` non-blank lines.

Limits and how to raise them (environment variable, default). Each can also be passed as a
keyword: ``Limits.from_env(depth=200)`` or ``Limits(...)`` to ``load_scenario(path, limits=...)``,
``load_scenarios``, ``load_agentclinic`` and ``read_yaml``.

=============================  ===========  ===================================================
variable                       default      what it bounds
=============================  ===========  ===================================================
AGENTSIM_MAX_FILE_BYTES        1 MiB        size of a YAML file (scenario, catalogue, rubric)
AGENTSIM_MAX_CASE_FILE_BYTES   64 MiB       size of a ``.jsonl`` file (case file, transcript)
AGENTSIM_MAX_STRING_CHARS      100,000      characters of one string (one YAML scalar / JSON
                                            string or key)
AGENTSIM_MAX_DEPTH             64           nesting of mappings and lists (with aliases
                                            expanded)
AGENTSIM_MAX_ALIASES           200          alias uses (``*name``) in one YAML file
AGENTSIM_MAX_NODES             100,000      values (scalars, mappings, lists) in one YAML
                                            document with aliases expanded, or in one JSON line
AGENTSIM_MAX_EXPANDED_CHARS    8 MiB        characters of all strings of one YAML document with
                                            aliases expanded
AGENTSIM_MAX_CASES             10,000       non-blank lines (cases) of one ``.jsonl`` file
=============================  ===========  ===================================================
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
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

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on input files; see the module docstring for each and its environment variable."""

    file_bytes: int = 1 * MiB
    case_file_bytes: int = 64 * MiB
    string_chars: int = 100_000
    depth: int = 64
    aliases: int = 200
    nodes: int = 100_000
    expanded_chars: int = 8 * MiB
    cases: int = 10_000

    @classmethod
    def from_env(cls, **overrides: int) -> Limits:
        """The defaults, replaced by ``AGENTSIM_MAX_<NAME>`` variables, then by ``overrides``."""
        values: dict[str, int] = {}
        for field in dataclasses.fields(cls):
            variable = env_name(field.name)
            raw = os.environ.get(variable)
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw.strip().replace("_", ""))
            except ValueError:
                raise InputError(f"must be a whole number, found {raw!r}",
                                 source=variable) from None
            if value < 1:
                raise InputError(f"must be at least 1, found {value}", source=variable)
            values[field.name] = value
        return cls(**{**values, **overrides})


def env_name(limit: str) -> str:
    """The environment variable of a limit field: ``depth`` → ``AGENTSIM_MAX_DEPTH``."""
    return f"AGENTSIM_MAX_{limit.upper()}"


def _raise_hint(limit: str) -> str:
    return f"set {env_name(limit)} to raise the limit"


class LimitExceeded(InputError):
    """An input over one of the :class:`Limits`; ``limit`` names it (e.g. ``depth``)."""

    def __init__(self, message: str, *, limit: str, **where: Any) -> None:
        self.limit = limit
        super().__init__(f"{message} ({_raise_hint(limit)})", **where)


# ---------------------------------------------------------------------------------------------
# Files: kind, size, encoding


def check_regular_file(path: Path) -> os.stat_result:
    """The file's stat when it is a regular file (symbolic links followed); else InputError
    saying what it is: missing, a broken or looping link, a folder, a FIFO or device."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            target = os.readlink(path)
            raise InputError(f"broken symbolic link (its target {target!r} does not exist)",
                             source=path) from None
        raise InputError("no such file or folder", source=path) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InputError("symbolic link loop (the link points back to itself)",
                             source=path) from None
        raise InputError(f"cannot read file ({error.strerror or error})", source=path) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a folder, not a file", source=path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file (a FIFO, device or socket cannot be read as a "
                         "scenario)", source=path)
    return info


def read_bytes(path: Path, max_bytes: int, limit: str) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (checked before reading)."""
    info = check_regular_file(path)
    too_big = f"file too large: {{}} bytes, the limit is {max_bytes:,}"
    if info.st_size > max_bytes:
        raise LimitExceeded(too_big.format(f"{info.st_size:,}"), limit=limit, source=path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise InputError(f"cannot read file ({error.strerror or error})", source=path) from None
    if len(data) > max_bytes:
        raise LimitExceeded(too_big.format(f"more than {max_bytes:,}"), limit=limit, source=path)
    return data


UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
              (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))
# What YAML 1.1 allows in a stream (PyYAML's Reader.NON_PRINTABLE).
_YAML_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd"
                             "\U00010000-\U0010ffff]")


def line_of(data: bytes, offset: int) -> int:
    """1-based line of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


def decode_utf8(data: bytes, source: str | Path, *, yaml_text: bool = False) -> str:
    """UTF-8 text (a leading byte-order mark dropped); InputError naming the byte offset of the
    first thing that is not: a UTF-16/32 mark, a NUL byte, an invalid byte and, for YAML, a
    control character YAML forbids."""
    for mark, name in _WIDE_BOMS:
        if data.startswith(mark):
            raise InputError(f"{name} text (byte-order mark at byte offset 0): save the file "
                             "as UTF-8", source=source, line=1)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"NUL byte at byte offset {nul}: a binary file, or UTF-16/UTF-32 "
                         "text; save the file as UTF-8 text", source=source,
                         line=line_of(data, nul))
    start = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        raise InputError(f"not UTF-8: byte 0x{data[offset]:02X} at byte offset {offset} "
                         "(Latin-1 or another encoding?); save the file as UTF-8",
                         source=source, line=line_of(data, offset)) from None
    if yaml_text:
        bad = _YAML_FORBIDDEN.search(text)
        if bad is not None:
            offset = start + len(text[: bad.start()].encode("utf-8"))
            raise InputError(f"control character U+{ord(bad.group()):04X} at byte offset "
                             f"{offset} is not allowed in YAML", source=source,
                             line=line_of(data, offset))
    return text


def read_text(path: Path, max_bytes: int, limit: str, *, yaml_text: bool = False) -> str:
    """A bounded, checked UTF-8 file (see :func:`read_bytes` and :func:`decode_utf8`)."""
    return decode_utf8(read_bytes(path, max_bytes, limit), path, yaml_text=yaml_text)


# ---------------------------------------------------------------------------------------------
# YAML


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


def load_yaml_file(path: str | Path, limits: Limits | None = None) -> Any:
    """Read and parse one YAML file with every check of this module."""
    path = Path(path)
    limits = limits or Limits.from_env()
    text = read_text(path, limits.file_bytes, "file_bytes", yaml_text=True)
    return parse_yaml(text, path, limits)


# ---------------------------------------------------------------------------------------------
# JSON lines


class BadLine(Exception):
    """A JSON line that cannot be used; ``field`` is the path inside it when known."""

    def __init__(self, message: str, field: str | None = None, limit: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field, self.limit = message, field, limit


def _no_constant(name: str) -> Any:
    raise BadLine(f"{name} is not a JSON value")


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadLine(f"duplicate key {key!r}", field=key)
        result[key] = value
    return result


def parse_json_line(line: str, limits: Limits) -> Any:
    """One JSON value under ``limits`` (depth, values, string length, duplicate keys);
    :class:`BadLine` for anything refused."""
    try:
        value = json.loads(line, parse_constant=_no_constant, object_pairs_hook=_pairs_hook)
    except json.JSONDecodeError as error:
        raise BadLine(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise BadLine(f"nested deeper than {limits.depth} levels", limit="depth") from None
    check_json_value(value, limits)
    return value


def check_json_value(value: Any, limits: Limits,
                     path_of: Callable[[list[str | int]], str] | None = None) -> None:
    """Depth, value count and string lengths of a parsed JSON value (iteratively)."""
    render = path_of or _json_path
    count = 0
    stack: list[tuple[Any, int, list[str | int]]] = [(value, 1, [])]
    while stack:
        item, depth, where = stack.pop()
        count += 1
        if count > limits.nodes:
            raise BadLine(f"more than {limits.nodes:,} values", limit="nodes")
        if depth > limits.depth:
            raise BadLine(f"nested deeper than {limits.depth} levels", field=render(where) or None,
                          limit="depth")
        if isinstance(item, str):
            if len(item) > limits.string_chars:
                raise BadLine(f"a string of {len(item):,} characters, the limit is "
                              f"{limits.string_chars:,}", field=render(where) or None,
                              limit="string_chars")
        elif isinstance(item, dict):
            for key, child in item.items():
                if len(key) > limits.string_chars:
                    raise BadLine(f"a key of {len(key):,} characters, the limit is "
                                  f"{limits.string_chars:,}", field=render(where) or None,
                                  limit="string_chars")
                stack.append((child, depth + 1, [*where, key]))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, [*where, i]) for i, child in enumerate(item))


def _json_path(where: list[str | int]) -> str:
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def bad_line_error(bad: BadLine, source: str | Path, line: int) -> InputError:
    """The InputError of a refused JSON line."""
    if bad.limit is not None:
        return LimitExceeded(bad.message, limit=bad.limit, source=source, line=line,
                             field=bad.field)
    return InputError(bad.message, source=source, line=line, field=bad.field)
