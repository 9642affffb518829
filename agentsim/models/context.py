"""How much a model can read at once: its context window, for checking a plan's longest call
before a run (``agentsim study plan``) rather than failing half-way (kind ``context_window``).
"""

from __future__ import annotations

from typing import Any


def context_window(resolver: Any, name: str) -> int | None:
    """The context, in tokens, of the model ``name`` routes to: the embedded llama.cpp
    context for ``local/`` models, litellm's cost map for hosted ones (a dictionary read),
    None when unknown (scripted models, servers the map does not list)."""
    endpoint = resolver.resolve(name)
    if endpoint.in_process:
        from agentsim.models.local import CONTEXT_TOKENS

        return CONTEXT_TOKENS if endpoint.model.startswith("local/") else None
    from agentsim.models.client import _backend  # litellm: only for a hosted model

    return _backend().max_input_tokens(endpoint.model)


def context_problem(resolver: Any, name: str, longest: int) -> str | None:
    """A warning when a call of ``longest`` tokens (prompt and max_tokens) does not fit the
    context of ``name``, else None."""
    limit = context_window(resolver, name)
    if limit is None or longest <= limit:
        return None
    return (f"{name}: the longest call needs about {longest:,} tokens (prompt and max_tokens), "
            f"more than its context of {limit:,}: such calls fail (context_window); lower "
            "max_tokens or rounds, or use a model with a longer context")
