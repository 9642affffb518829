"""An on-disk cache of model calls, so that re-running an experiment costs nothing.

The key is a hash of everything that determines an answer: the model name, the endpoint that
serves it (API base, router deployments, structured-output mode, extra parameters: the same name
on another server is another model), the messages, the JSON schema, the sampling parameters, the
call's seed and the replicate number — replicates of a conversation therefore never collapse into
copies of one another — and the request's ``facts`` when it has them (the scripted model's answers
depend on the scenario's coding, which no prompt shows). The client keys a hosted model's call
without its facts (``client.cached_as``: such a model never sees them), so a request answered by
anyone but an in-process provider has the key it always had. Entries are small JSON files
sharded by the key's first two characters, written atomically, so concurrent runs can share a
cache folder. The folder is ``--cache-dir``, else ``$AGENTSIM_CACHE_DIR``, else
``~/.cache/agentsim/calls``. Failed calls are never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from agentsim.models.base import ModelRequest

ENV = "AGENTSIM_CACHE_DIR"


def default_cache_dir() -> Path:
    """Where the cache lives unless told otherwise."""
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "agentsim" / "calls")


def cache_key(request: ModelRequest, endpoint: str = "") -> str:
    """The hash of everything that determines a model's answer; ``endpoint`` is the identity of
    the endpoint serving ``request.model`` (see Endpoint.identity)."""
    parts: dict[str, Any] = {
        "model": request.model, "endpoint": endpoint, "messages": request.messages,
        "schema": request.schema, "temperature": request.temperature,
        "max_tokens": request.max_tokens, "seed": request.seed, "replicate": request.replicate,
        "purpose": request.purpose}
    if request.facts is not None:  # only then: every other request keeps its key
        parts["facts"] = request.facts
    if request.top_p is not None:  # likewise
        parts["top_p"] = request.top_p
    material = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


class DiskCache:
    """Model answers by request, in a folder."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, request: ModelRequest, endpoint: str = "") -> dict[str, Any] | None:
        """The stored answer, or None (a missing or unreadable entry is a miss)."""
        try:
            return json.loads(self._path(cache_key(request, endpoint)).read_text("utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, request: ModelRequest, answer: dict[str, Any], endpoint: str = "") -> None:
        """Store an answer (text and token counts) atomically."""
        path = self._path(cache_key(request, endpoint))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(answer), "utf-8")
        os.replace(tmp, path)
