"""The exception tree of agentsim.

Every error a user can cause carries enough context (file, field path, line) to be fixed without
reading a traceback; the CLI turns an :class:`AgentsimError` into one message and exit status 2.
"""

from __future__ import annotations

from pathlib import Path


class AgentsimError(Exception):
    """Base class of every error agentsim raises on purpose."""

    exit_status = 2


class InputError(AgentsimError):
    """Bad input from the user: a file, a field or an option.

    ``source`` names the file (or option), ``field`` the path inside it (``personas[1].id``) and
    ``line`` the line number for line-oriented files, each when known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        self.field = field
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        return f"{where}: {self.message}" if where else self.message


class ScenarioError(InputError):
    """A scenario file that cannot be read or does not validate.

    ``problems`` holds every (field path, message) pair found, so that one run of
    ``agentsim validate`` reports all of them at once.
    """

    def __init__(self, source: str | Path, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        first_field, first_message = problems[0] if problems else ("", "invalid")
        super().__init__(first_message, source=source, field=first_field or None)

    def __str__(self) -> str:
        if len(self.problems) <= 1:
            return super().__str__()
        lines = [f"{self.source}: {len(self.problems)} problems"]
        lines += [f"  {field or '<file>'}: {message}" for field, message in self.problems]
        return "\n".join(lines)


class ModelError(AgentsimError):
    """A model call that failed; ``model`` names the model.

    ``kind`` says what went wrong in words a summary can group by: ``rate_limit``, ``timeout``,
    ``connection``, ``server`` (5xx), ``empty_reply`` (transient, retried) or ``auth``,
    ``not_found``, ``bad_request``, ``context_window`` (the prompt and max_tokens do not fit
    the model's context), ``unsupported_param``, ``unknown_provider`` (permanent, never
    retried). ``attempts`` counts the attempts made; ``retry_after`` is the server's wait, when it
    sent one.
    """

    def __init__(self, message: str, *, model: str, retryable: bool = True,
                 kind: str = "error", attempts: int = 1,
                 retry_after: float | None = None) -> None:
        self.model = model
        self.retryable = retryable
        self.kind = kind
        self.attempts = attempts
        self.retry_after = retry_after
        self.detail = message
        super().__init__(f"{model}: {message}")


class ModelNameError(InputError):
    """A model name agentsim cannot route (unknown ``local/`` model, bad ``scripted/`` knob)."""


class EndpointError(InputError):
    """A model that cannot be used as configured, found before a run starts: an unknown
    provider, a missing key, a server that cannot be reached or refuses the key."""


class DecisionParseError(AgentsimError):
    """A model answer from which no valid decision could be extracted."""

    def __init__(self, message: str, *, raw: str) -> None:
        self.raw = raw
        super().__init__(message)


class RunStoreError(AgentsimError):
    """A run folder that is missing, unreadable or not an agentsim run."""


class PluginError(AgentsimError):
    """A registry lookup that failed: unknown name, bad entry point, bad plugin file."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (SIGTERM, SIGHUP): in-flight conversations are abandoned, the
    manifest says ``interrupted``, and ``agentsim resume`` finishes the run. The command exits
    with 128 + the signal's number (143 for SIGTERM, 129 for SIGHUP; Ctrl-C gives 130)."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
