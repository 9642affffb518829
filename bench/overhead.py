"""Framework overhead, measured as interleaved pairs in one process; one line each.

1. Scripted model at zero latency: a whole agentsim run (graph, prompts, parsing, logging,
   cache off, judges off) against a bare loop that sends the very same requests (replayed from
   the run's log) straight to the model client; the difference per call is agentsim's cost.
   Pairs alternate (run, bare, run, bare, ...). Budget: a few milliseconds per call.
2. Embedded model: tokens/s of a whole agentsim conversation (its wall time, the weights'
   loading left out) against raw llama-cpp-python answering the same prompts with the same
   sampling settings and seeds, pairs alternating. Budget: at least 0.90.

Usage: python bench/overhead.py [--pairs 3] [--replicates 2] [--skip-local]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from agentsim.core.store import RunStore
from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios" / "workplace"


def _run(scenarios, options: RunOptions) -> tuple[float, list, dict]:
    """(wall time, the run's model calls, each conversation's facts for the test model)."""
    from agentsim.core.jobs import ConversationJob
    from agentsim.core.reader import RunView
    from agentsim.models.facts import conversation_facts

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = run_experiment(scenarios, options, out=Path(tmp) / "run")
        elapsed = time.perf_counter() - started
        store = RunStore.open(summary.run_dir)
        calls = list(store.iter_events({"model_call"}))
        view, facts = RunView(store), {}
        for event in store.iter_events({"conversation_started"}):
            facts[event.conversation_id] = conversation_facts(
                "scripted", view.scenario_for(event.scenario_id, event.variant),
                ConversationJob.model_validate(event.job))
    return elapsed, calls, facts


def scripted_overhead(pairs: int, replicates: int) -> str:
    scenarios = load_scenarios([SCENARIOS])
    options = RunOptions(model="scripted/stereotyped?rate=0.5", replicates=replicates,
                         concurrency=1, judges=(), cache=False)
    client = ModelClient()

    async def bare(calls: list, facts: dict) -> float:
        requests = [ModelRequest(
            model=call.model, messages=call.messages, purpose=call.purpose, seed=call.call_seed,
            temperature=call.temperature, max_tokens=call.max_tokens,
            facts=facts.get(call.conversation_id)) for call in calls]
        begin = time.perf_counter()
        for request in requests:
            await client.complete(request)
        return time.perf_counter() - begin

    _run(scenarios, options)  # warm-up: imports and first compilation of the graphs
    per_call = []
    for _ in range(pairs):
        elapsed, calls, facts = _run(scenarios, options)
        direct = asyncio.run(bare(calls, facts))
        per_call.append((elapsed - direct) / len(calls) * 1000)
    return (f"overhead, scripted: {statistics.median(per_call):.2f} ms per call "
            f"(pairs: {', '.join(f'{x:.2f}' for x in per_call)}) over a bare loop of the same "
            f"{len(calls)} client calls | zero latency, concurrency 1, cache off, judges off, "
            f"run set-up included, interleaved pairs, budget: a few ms")


def local_ratio(pairs: int) -> str:
    from llama_cpp import Llama

    from agentsim.agents.decisions import assignment_schema
    from agentsim.models.local import CONTEXT_TOKENS, resolve_local

    scenarios = load_scenarios([SCENARIOS / "office-product-launch.yaml"])
    schema = assignment_schema(scenarios[0][1])
    # The same settings as agentsim's LocalModels (threads = all cores): only the framework
    # differs; each call replayed with its own seed, temperature and token limit.
    llama = Llama(model_path=str(resolve_local("smollm2-135m-instruct")), n_ctx=CONTEXT_TOKENS,
                  n_threads=os.cpu_count() or 1, verbose=False, seed=0)
    ratios = []
    for seed in range(pairs):
        elapsed, calls, _ = _run(scenarios, RunOptions(rounds=1, seed=seed, judges=(),
                                                       cache=False))
        # The first call loads the weights: both sides are compared on the calls after it.
        first, rest = calls[0], calls[1:]
        ours = sum(c.completion_tokens or 0 for c in rest) / (elapsed - first.latency_s)
        tokens, begin = 0, time.perf_counter()
        for call in rest:
            kwargs = {"messages": call.messages, "temperature": call.temperature,
                      "seed": call.call_seed, "max_tokens": call.max_tokens}
            if call.structured:
                kwargs["response_format"] = {"type": "json_object", "schema": schema}
            tokens += llama.create_chat_completion(**kwargs)["usage"]["completion_tokens"]
        raw = tokens / (time.perf_counter() - begin)
        ratios.append(ours / raw)
    llama.close()
    return (f"overhead, embedded model: agentsim / raw llama-cpp-python tokens/s = "
            f"{statistics.median(ratios):.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)}) "
            f"| one conversation per pair, whole run wall time (weights' loading left out) vs "
            f"the same prompts and seeds replayed raw, interleaved, cache off, budget >= 0.90")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    print(scripted_overhead(args.pairs, args.replicates))
    if not args.skip_local:
        print(local_ratio(args.pairs))


if __name__ == "__main__":
    main()
