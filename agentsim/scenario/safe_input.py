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

The limits (:class:`Limits`, their environment variables and defaults) are in
:mod:`agentsim.scenario.input_limits`, the YAML loader in :mod:`agentsim.scenario.safe_yaml`;
both are re-exported here, the one module to import input reading from.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentsim.errors import InputError
from agentsim.scenario.input_limits import LimitExceeded, Limits, MiB, env_name  # noqa: F401
from agentsim.scenario.safe_yaml import (  # noqa: F401
    BoundedLoader,
    PythonBoundedLoader,
    parse_yaml,
)


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
