"""The lock of a run folder: one process writes it at a time (``fcntl.flock`` on
``RUN_DIR/.lock``, released by the kernel when the holder dies, however it dies). Part of the run
folder (:mod:`agentsim.core.store` re-exports every name).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from agentsim.errors import RunStoreError

__all__ = ["LOCK", "RunLock", "RunLockedError"]

LOCK = ".lock"


class RunLockedError(RunStoreError):
    """Another process is writing the run folder."""


class RunLock:
    """An exclusive OS lock (``flock``) on ``RUN_DIR/.lock``, naming its holder in the file.

    The kernel drops the lock when the holding process dies, so a killed writer never leaves a
    folder locked. The lock file is removed on release; an acquirer checks that the file it
    locked is still the one at the path (otherwise two processes could each lock a different
    file).
    """

    def __init__(self, run_dir: str | Path, command: str) -> None:
        self.run_dir = Path(run_dir)
        self.command = command
        self.path = self.run_dir / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` naming who holds it."""
        for _ in range(50):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except PermissionError:
                raise RunStoreError(f"{self.run_dir}: cannot write the lock file (permission "
                                    "denied)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                raise RunLockedError(self._refusal(holder)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file as we opened it: try again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "command": self.command,
                                     "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                            time.gmtime())}).encode())
            self._fd = fd
            return self
        raise RunLockedError(f"{self.run_dir}: could not take the lock (it kept changing)")

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def _holder(self, fd: int) -> dict[str, Any]:
        for _ in range(20):  # the holder writes its name just after taking the lock
            try:
                data = os.pread(fd, 4096, 0)
                if data:
                    holder = json.loads(data)
                    if isinstance(holder, dict):
                        return holder
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        return {}

    def _refusal(self, holder: dict[str, Any]) -> str:
        pid = holder.get("pid", "unknown")
        command = holder.get("command") or "another agentsim command"
        since = f" since {holder['since']}" if holder.get("since") else ""
        return (f"{self.run_dir} is being written by '{command}' (pid {pid}){since}; one "
                f"process writes a run folder at a time. Wait for it to finish, or stop it "
                f"(kill {pid}; a stopped run is finished later with agentsim resume "
                f"{self.run_dir}), then try again")

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
