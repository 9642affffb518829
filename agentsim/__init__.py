"""agentsim: simulate conversations between LLM agents and measure social bias in them.

The public API is small and stable; implementation modules may change. Heavy dependencies
(litellm, langgraph, llama.cpp) load only when a run needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
