"""What a model's tokens cost: US dollars per prompt and per completion token of a model name
as a run routes it, for ``--max-cost``, the plan of a study and the ``usage`` of a run.

Where a price comes from, first match wins:

1. the models config entry's ``input_cost_per_token`` / ``output_cost_per_token`` (a
   self-hosted model, an unlisted one, a negotiated price; also how tests price a scripted
   model);
2. agentsim's in-process providers (``scripted/``, ``local/``) cost nothing;
3. an endpoint whose ``api_base`` is on this machine (localhost, 127.0.0.0/8, ::1) costs
   nothing: a local server (llama.cpp, vLLM, Ollama) is paid for by its owner, not per token;
4. litellm's cost map for the litellm model name (the installed copy, never the network), for
   a router group the price its deployments agree on;
5. otherwise the price is unknown (None): a spending limit cannot count such calls, and a
   plan says "unknown" rather than guess.

litellm is imported only when step 4 is reached (it takes seconds), so runs and plans of
scripted and local models never load it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from agentsim.models.endpoints import Endpoint, EndpointResolver

__all__ = ["FREE", "Price", "Prices", "price_of"]


@dataclass(frozen=True)
class Price:
    """US dollars per prompt token and per completion token, and where the price came from
    (``config``, ``in-process``, ``local server``, ``litellm``)."""

    prompt: float
    completion: float
    source: str

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        """The cost of one call's tokens (missing counts are zero)."""
        return (prompt_tokens or 0) * self.prompt + (completion_tokens or 0) * self.completion


FREE = Price(0.0, 0.0, "in-process")


def on_this_machine(url: str | None) -> bool:
    """True when ``url``'s host is this machine (a loopback name or address)."""
    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def price_of(endpoint: Endpoint) -> Price | None:
    """The price of an endpoint's tokens (see the module docstring), or None when unknown."""
    given = (endpoint.input_cost_per_token, endpoint.output_cost_per_token)
    if given != (None, None):  # one of the two given: the other is taken as free
        return Price(float(given[0] or 0.0), float(given[1] or 0.0), "config")
    if endpoint.in_process:
        return FREE
    if on_this_machine(endpoint.api_base):
        return Price(0.0, 0.0, "local server")
    from agentsim.models.client import _backend  # litellm, only now

    if endpoint.router:
        models = {item.rpartition("@")[0] for item in endpoint.deployments}
        found = {_backend().cost_per_token(model) for model in models}
        return Price(*found.pop(), "litellm") if len(found) == 1 and None not in found \
            else None
    known = _backend().cost_per_token(endpoint.model)
    return Price(*known, "litellm") if known is not None else None


class Prices:
    """Prices of model names as a run's resolver routes them, each looked up once."""

    def __init__(self, resolver: EndpointResolver) -> None:
        self.resolver = resolver
        self._known: dict[str, Price | None] = {}

    def __call__(self, name: str) -> Price | None:
        """The price of model name ``name`` (None: unknown, or a name that does not route)."""
        if name not in self._known:
            try:
                self._known[name] = price_of(self.resolver.resolve(name))
            except Exception:  # noqa: BLE001 - a name logged by an older version: unknown
                self._known[name] = None
        return self._known[name]

    def cost(self, name: str, prompt_tokens: int | None, completion_tokens: int | None,
             cached: bool = False) -> float | None:
        """What one call cost: 0 when served from the cache, None when the price is
        unknown."""
        if cached:
            return 0.0
        price = self(name)
        return None if price is None else price.cost(prompt_tokens, completion_tokens)
