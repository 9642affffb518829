"""Small helpers shared by the command modules (rich is imported only when used)."""

from __future__ import annotations

from typing import Any


def console(stderr: bool = False) -> Any:
    """A rich console that does not guess highlights in our text."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def escape(text: str) -> str:
    """Text with rich markup characters escaped (model output, file names)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
