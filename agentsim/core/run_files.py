"""The files of a run folder on disk: their names, JSON written whole (atomically, or created
exclusively), the run id, and the checks of a folder before a run is made in it (``--out``).
Everything written passes through the model client's redactor. Part of the run folder
(:mod:`agentsim.core.store` re-exports every name).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from agentsim.errors import RunStoreError

__all__ = ["EVENTS", "MANIFEST", "RESULTS", "RunExistsError", "check_run_dir",
           "create_json_exclusive", "make_run_dir", "new_redactor", "new_run_id",
           "write_json_atomic"]

MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
RESULTS = "results.json"


class RunExistsError(RunStoreError):
    """The folder already holds a run (or another writer created one first)."""


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def new_redactor() -> Any:
    """The model client's redactor (known key values, key-shaped strings, keys in URLs)."""
    from agentsim.models.client import Redactor

    return Redactor()


def _json_text(data: Any, redactor: Any) -> str:
    return (redactor or new_redactor())(json.dumps(data, indent=2, sort_keys=False,
                                                   default=str) + "\n")


def _temporary(path: Path, suffix: str) -> Path:
    """A temporary file beside ``path``, its name unique to this process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{suffix}")


def _write_synced(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, flushed and fsynced."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomic(path: Path, data: Any, redactor: Any = None) -> None:
    """Write JSON to ``path`` through a temporary file, fsync and a rename (secrets redacted)."""
    text = _json_text(data, redactor)
    tmp = _temporary(path, "tmp")
    try:
        _write_synced(tmp, text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def create_json_exclusive(path: Path, data: Any, redactor: Any = None) -> None:
    """Create ``path`` with this JSON only if it does not exist: the file appears whole (a hard
    link of a complete temporary file), and of two writers racing for it exactly one wins."""
    text = _json_text(data, redactor)
    tmp = _temporary(path, "new")
    try:
        _write_synced(tmp, text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise RunExistsError(f"{path.parent}: already holds a run; choose another --out "
                                 f"(or finish that run: agentsim resume {path.parent})") from None
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                raise
            with open(path, "x", encoding="utf-8") as handle:  # no hard links: O_EXCL
                handle.write(text)
    finally:
        if tmp.exists():
            tmp.unlink()


# -- the --out folder ------------------------------------------------------------------------------


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def check_run_dir(path: Path, option: str = "--out") -> None:
    """Refuse a run folder that cannot be one, before anything is written: a file, a path under
    a file, a dangling symbolic link, a folder that cannot be written, a folder holding a run."""
    from agentsim.errors import InputError

    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path} is a symbolic link to {os.readlink(path)}, which does not "
                         "exist; remove the link or choose another folder", source=option)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file, not a folder; choose another folder",
                         source=option)
    if path.is_dir():
        if (path / MANIFEST).exists() or (path / EVENTS).exists():
            raise RunExistsError(f"{path}: already holds a run; choose another {option} (or "
                                 f"finish that run: agentsim resume {path})")
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"{path} is not writable (permission denied); choose a folder "
                             "you can write", source=option)
        return
    ancestor = _first_existing(path)
    if not ancestor.is_dir():
        what = "a dangling symbolic link" if ancestor.is_symlink() and not ancestor.exists() \
            else "a file"
        raise InputError(f"{path} cannot be made: {ancestor} is {what}, not a folder",
                         source=option)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{path} cannot be made: {ancestor} is not writable (permission "
                         "denied); choose a folder you can write", source=option)


def make_run_dir(path: Path, option: str = "--out") -> None:
    """Make the folder (and its parents), with the reasons of :func:`check_run_dir` when the
    file system refuses."""
    from agentsim.errors import InputError

    check_run_dir(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise InputError(f"{path} cannot be made: permission denied; choose a folder you can "
                         "write", source=option) from None
    except OSError as error:
        raise InputError(f"{path} cannot be made: {error.strerror or error}", source=option) \
            from None
