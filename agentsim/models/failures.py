"""What a failed model call says about itself, read without litellm.

The server's ``Retry-After``, whether a connection was lost or a network failed underneath, and
the SDKs' complaint that no key was given. The litellm binding (:mod:`agentsim.models._litellm`)
classifies errors with these; preflight reads a missing key with them without importing litellm.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


def retry_after(error: BaseException) -> float | None:
    """The server's ``Retry-After`` (seconds), from whichever place litellm kept it."""
    for headers in (getattr(error, "litellm_response_headers", None),
                    getattr(error, "headers", None),
                    getattr(getattr(error, "response", None), "headers", None)):
        if not headers:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
        except AttributeError:
            continue
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:  # an HTTP date instead of seconds
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                continue
    return None


# litellm reports a refused connection to an OpenAI-compatible server as a 500; these words in
# the message (or an httpx connect error as the cause) tell it from a server's own 500.
CONNECTION_WORDS = ("connection error", "connection refused", "connecterror",
                    "failed to establish", "cannot connect", "all connection attempts failed",
                    "name or service not known", "nodename nor servname")


def lost_connection(error: BaseException) -> bool:
    """True when ``error`` (a server error, as litellm reports it) is a refused or lost
    connection: an httpx connect error in its chain, or the words of one in its message."""
    import httpx  # deferred, like every transport import here: preflight needs none of them

    cause: BaseException | None = error
    for _ in range(5):
        if cause is None:
            break
        if isinstance(cause, httpx.ConnectError | ConnectionError):
            return True
        cause = cause.__cause__ or cause.__context__
    text = str(error).lower()
    return any(word in text for word in CONNECTION_WORDS)


def network_error(error: BaseException) -> bool:
    """True for the exceptions a failed network makes (what a connection error is meant to say)."""
    import socket
    import ssl

    import httpx

    kinds: tuple[type[BaseException], ...] = (
        httpx.HTTPError, ConnectionError, TimeoutError, socket.gaierror, socket.herror,
        ssl.SSLError)
    try:
        import aiohttp  # litellm's optional transport; it maps most of its errors to httpx's
    except ImportError:
        pass
    else:
        kinds += (aiohttp.ClientError,)
    return isinstance(error, kinds)


def no_key_given(text: str) -> bool:
    """True for the SDKs' complaint that no key was given at all (nothing was sent)."""
    lowered = text.lower()
    return "missing credentials" in lowered or bool(
        "missing" in lowered and "api key" in lowered and "set" in lowered)
