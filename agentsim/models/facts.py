"""Facts an in-process provider asks for once per conversation (its ``conversation_facts`` hook).

Some providers answer from more than the messages: the scripted test models plant decisions with
a known bias label, so they need the scenario's task coding, the people's names and the like.
Production code does not compute such facts. A provider that needs them defines
``conversation_facts(scenario, job)`` (see :class:`agentsim.models.base.InProcessProvider`);
the conversation's context asks :func:`conversation_facts` once per provider its models use and
attaches the answer to that provider's requests as ``ModelRequest.facts``. Every other provider
(hosted models, model servers, the embedded llama.cpp model) has no hook, so its requests carry
no facts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agentsim.registry import REGISTRY

HOOK = "conversation_facts"  # the provider attribute named in InProcessProvider's docstring
FactsHook = Callable[[Any, Any], Mapping[str, Any] | None]


def provider_of(model: str) -> str:
    """The provider prefix of a model name ('' for a name without one)."""
    return model.partition("/")[0] if "/" in model else ""


def facts_hook(provider: str) -> FactsHook | None:
    """The ``conversation_facts`` hook of a registered in-process provider; None for any other
    provider, and for a registered one without the hook."""
    if not provider or provider not in REGISTRY.names("provider"):
        return None
    return getattr(REGISTRY.get("provider", provider), HOOK, None)


def conversation_facts(provider: str, scenario: Any, job: Any) -> Mapping[str, Any] | None:
    """What ``provider``'s hook says about the conversation of ``scenario`` and ``job`` (a
    :class:`~agentsim.core.jobs.ConversationJob`), or None when it has no hook."""
    hook = facts_hook(provider)
    return None if hook is None else hook(scenario, job)
