"""Built-in assets (prompts, lexicons, rubrics, name lists, catalogues) as package data.

Assets are found with :mod:`importlib.resources`, so they load the same from a checkout, an
editable install and a wheel. A user's own file always wins over the shipped one; the shipped
copies under the top-level ``mitigations/`` and ``scenarios/`` folders are for copying and editing.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

from agentsim.errors import InputError

__all__ = ["asset", "asset_path", "read_asset"]


def asset(package: str, *parts: str) -> Traversable:
    """The shipped asset ``parts`` of ``package`` (``asset("agentsim.judges", "rubrics", "x")``)."""
    node = files(package)
    for part in parts:
        node = node.joinpath(part)
    return node


def asset_path(package: str, *parts: str) -> Path:
    """A file-system path of a shipped asset (package data is a real folder in every install
    agentsim supports: a checkout, an editable install or an unzipped wheel)."""
    node = asset(package, *parts)
    with as_file(node) as path:
        return Path(path)


def read_asset(package: str, *parts: str, override: str | Path | None = None) -> str:
    """Text of an asset: the user's file ``override`` when given, else the shipped one."""
    source: Traversable | Path = Path(override) if override else asset(package, *parts)
    try:
        return source.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read {'/'.join(parts) or 'asset'} ({error.strerror})",
                         source=str(source)) from None
