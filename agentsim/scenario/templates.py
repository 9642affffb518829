"""Inert prompt templates: ``{name}`` placeholders, nothing else.

Texts a scenario file supplies and agentsim fills in (setup role prompts, decision questions,
bias catalogue entries) are templates of this tiny language, never Python format strings:

* ``{field}`` is replaced by the value of ``field`` (letters, digits, ``_`` and ``-``, starting
  with a letter or ``_``); the value is inserted as it is, and never read as a template itself;
* ``{{`` and ``}}`` stand for literal ``{`` and ``}``;
* anything else with a brace is an error: a format spec (``{name:>40}``), a conversion
  (``{name!r}``), attribute access (``{name.__class__}``), indexing (``{x[0]}``), an empty
  ``{}``, an unclosed ``{`` or a lone ``}``.

So filling a template costs time linear in its length plus the values, and can reach nothing
but the values it is given. Check a file's templates when it is validated with :func:`check`;
fill them with :func:`fill`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_BRACE = re.compile(r"\{\{|\}\}|\{|\}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
ESCAPE_HINT = "write {{ and }} for literal braces"


class TemplateError(ValueError):
    """A template that is not plain ``{name}`` placeholders and text."""


def _describe(inner: str) -> str:
    if not inner:
        return "an empty placeholder {}"
    for mark, what in ((":", "a format spec"), ("!", "a conversion"), (".", "attribute access"),
                       ("[", "indexing")):
        if mark in inner:
            return what
    return "a placeholder that is not a plain field name"


def _shown(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(template: str) -> list[tuple[str, str]]:
    """The template as ``("text", literal)`` and ``("field", name)`` parts, in order;
    :class:`TemplateError` naming the position of the first thing not allowed."""
    parts: list[tuple[str, str]] = []
    text: list[str] = []
    position, size = 0, len(template)
    while position < size:
        brace = _BRACE.search(template, position)
        if brace is None:
            text.append(template[position:])
            break
        start = brace.start()
        text.append(template[position:start])
        token = brace.group()
        if token in ("{{", "}}"):
            text.append(token[0])
            position = brace.end()
            continue
        if token == "}":
            raise TemplateError(f"a lone '}}' at character {start + 1}; {ESCAPE_HINT}")
        close = template.find("}", start + 1)
        opener = template.find("{", start + 1)
        if close < 0 or (0 <= opener < close):
            raise TemplateError(f"an unclosed '{{' at character {start + 1}; {ESCAPE_HINT}")
        inner = template[start + 1: close]
        if not _FIELD.fullmatch(inner):
            raise TemplateError(
                f"{{{_shown(inner)}}} at character {start + 1} is {_describe(inner)}, which is "
                "not allowed: placeholders are plain {field} names (no ':' format specs, "
                f"'!' conversions, '.' attributes or '[]' indexing); {ESCAPE_HINT}")
        if any(text):
            parts.append(("text", "".join(text)))
        text = []
        parts.append(("field", inner))
        position = close + 1
    if any(text):
        parts.append(("text", "".join(text)))
    return parts


def placeholders(template: str) -> list[str]:
    """The field names a template uses, in order of first use."""
    return list(dict.fromkeys(name for kind, name in parse(template) if kind == "field"))


def check(template: str, allowed: Iterable[str], what: str) -> None:
    """ValueError naming ``what`` (e.g. ``protocol.roles.chair.prompt``) when the template is
    malformed or uses a field outside ``allowed``."""
    try:
        names = placeholders(template)
    except TemplateError as error:
        raise TemplateError(f"{what}: {error}") from None
    known = set(allowed)
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = ", ".join(f"{{{name}}}" for name in sorted(known))
        allowed_text = f"known: {listed}" if known else "this text takes no placeholders"
        raise TemplateError(f"{what}: unknown placeholder {{{unknown[0]}}} ({allowed_text}; "
                            f"{ESCAPE_HINT})")


def fill(template: str, values: Mapping[str, object]) -> str:
    """The template with every placeholder replaced by ``str(values[name])``; TemplateError for
    a malformed template or a name without a value."""
    out: list[str] = []
    for kind, value in parse(template):
        if kind == "text":
            out.append(value)
        elif value in values:
            out.append(str(values[value]))
        else:
            raise TemplateError(f"unknown placeholder {{{value}}}")
    return "".join(out)
