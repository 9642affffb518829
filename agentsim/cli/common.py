"""Small helpers shared by the command modules (rich is imported only when used).

Everything the command line prints goes through the model client's redactor: a key that reached
a message (a server echoing its request, an error quoting a URL) is never shown.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from typing import Any

_console_class: Any = None


def _redacting_console() -> Any:
    global _console_class
    if _console_class is None:
        from rich.console import Console

        class RedactingConsole(Console):
            """A rich console whose printed strings are redacted first."""

            def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003
                from agentsim.models.client import Redactor

                redactor = Redactor()
                super().print(*(redactor(o) if isinstance(o, str) else o for o in objects),
                              **kwargs)

        _console_class = RedactingConsole
    return _console_class


def console(stderr: bool = False) -> Any:
    """A rich console that does not guess highlights in our text and redacts secrets."""
    return _redacting_console()(stderr=stderr, highlight=False)


def escape(text: str) -> str:
    """Text with rich markup characters escaped (model output, file names)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_json(data: Any) -> None:
    """One JSON object on stdout, secrets redacted."""
    from agentsim.models.client import redact

    print(redact(json.dumps(data, default=str)))


SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the command as Ctrl-C would, so a run ends cleanly: in-flight
    conversations are abandoned (never logged as failed), the manifest says ``interrupted``, the
    folder's lock is released, and :class:`~agentsim.errors.Interrupted` leaves this block.

    While an asyncio loop runs (conversations in flight) the signal cancels its tasks — raising
    inside a task would leave asyncio complaining about an exception never retrieved; otherwise
    it raises at once. A second signal during the clean-up is ignored. Outside the main thread:
    no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import sys

    from agentsim.errors import Interrupted

    # asyncio (about 0.1 s to import) is not imported here: no loop can run, and no task be
    # cancelled, until a command has imported it.
    state: dict[str, Any] = {"signum": None}

    def handler(signum: int, frame: Any) -> None:
        if state["signum"] is not None:
            return
        state["signum"] = signum
        asyncio = sys.modules.get("asyncio")
        try:
            if asyncio is None:
                raise RuntimeError("no running event loop")
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise Interrupted(signum) from None
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.call_soon_threadsafe(lambda: None)  # wake the loop if it is waiting

    previous = {number: signal.signal(number, handler) for number in SIGNALS}
    try:
        yield
    except BaseException as error:
        asyncio = sys.modules.get("asyncio")
        cancelled = asyncio is not None and isinstance(error, asyncio.CancelledError)
        if not (cancelled or isinstance(error, Interrupted)):
            raise
        if state["signum"] is None or isinstance(error, Interrupted):
            raise
        interrupted = Interrupted(state["signum"])
        interrupted.run_dir = getattr(error, "run_dir", None)  # type: ignore[attr-defined]
        raise interrupted from None
    finally:
        for number, old in previous.items():
            signal.signal(number, old if old is not None else signal.SIG_DFL)


def interrupted_status(error: BaseException) -> int:
    """The exit status of an interruption: 128 + the signal (130 for Ctrl-C)."""
    return 128 + int(getattr(error, "signum", signal.SIGINT))

