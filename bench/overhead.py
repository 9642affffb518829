"""Framework overhead, measured in one run and printed as ratios.

1. Scripted model at zero latency: wall time per model call of a whole agentsim run (graph,
   prompts, parsing, logging, litellm routing) minus the time the scripted provider itself takes
   for the same requests, called directly. Budget: a few milliseconds per call.
2. Embedded model: tokens/s of agentsim's calls vs raw llama-cpp-python on the very same prompts
   (replayed from the run's log, same sampling settings and seeds). Budget: at least 90 %.

Usage: python bench/overhead.py [--conversations N] [--skip-local]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from agentsim.testing import scripted
from agentsim.models.base import ModelRequest
from agentsim.models.client import _backend
from agentsim.models.names import parse_model_name
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios" / "workplace"


def scripted_overhead(replicates: int) -> None:
    _backend()  # import litellm outside the timed region
    scenarios = load_scenarios([SCENARIOS])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = run_experiment(scenarios, RunOptions(model="scripted/stereotyped?rate=0.5",
                                                       replicates=replicates, concurrency=1,
                                                       judges=()),
                                 out=Path(tmp) / "run")
        total = time.perf_counter() - started
        calls = list(RunStore.open(summary.run_dir).iter_events({"model_call"}))
    name = parse_model_name(calls[0].model)

    async def raw() -> float:
        begin = time.perf_counter()
        for call in calls:
            request = ModelRequest(model=call.model, messages=call.messages, purpose=call.purpose,
                                   seed=0, context={})
            if call.purpose == "decision":
                continue  # decisions need the context; time the cheaper path for a lower bound
            await scripted.respond(name, request)
        return time.perf_counter() - begin

    raw_time = asyncio.run(raw())
    per_call = (total - raw_time) / len(calls) * 1000
    print(f"scripted, zero latency: {len(calls)} calls in {total:.2f} s "
          f"(conversations: {summary.conversations}, run set-up included, judging excluded)")
    print(f"  agentsim overhead per model call: {per_call:.2f} ms")


def local_ratio(limit: int) -> None:
    from llama_cpp import Llama

    from agentsim.agents.decisions import assignment_schema
    from agentsim.models.local import CONTEXT_TOKENS, resolve_local

    scenarios = load_scenarios([SCENARIOS / "office-product-launch.yaml"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_experiment(scenarios, RunOptions(rounds=2, seed=1, judges=()),
                                 out=Path(tmp) / "run")
        # The first call loads the weights; both sides are compared on the calls after it.
        calls = list(RunStore.open(summary.run_dir).iter_events({"model_call"}))[1:limit + 1]
    framework_tokens = sum(c.completion_tokens or 0 for c in calls)
    framework_time = sum(c.latency_s for c in calls)
    # The same settings as agentsim's LocalModels (threads = all cores), so that only the
    # framework differs; replayed with each call's own seed, temperature and token limit.
    llama = Llama(model_path=str(resolve_local("smollm2-135m-instruct")), n_ctx=CONTEXT_TOKENS,
                  n_threads=os.cpu_count() or 1, verbose=False, seed=0)
    schema = assignment_schema(scenarios[0][1])
    raw_tokens, raw_time, same_output = 0, 0.0, 0
    for call in calls:
        kwargs = {"messages": call.messages, "temperature": call.temperature,
                  "seed": call.call_seed, "max_tokens": call.max_tokens}
        if call.structured:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        begin = time.perf_counter()
        out = llama.create_chat_completion(**kwargs)
        raw_time += time.perf_counter() - begin
        raw_tokens += out["usage"]["completion_tokens"]
        same_output += out["choices"][0]["message"]["content"] == call.response
    llama.close()
    framework_rate, raw_rate = framework_tokens / framework_time, raw_tokens / raw_time
    print(f"local model, {len(calls)} calls replayed: agentsim {framework_rate:.1f} tok/s, "
          f"raw llama-cpp-python {raw_rate:.1f} tok/s")
    print(f"  ratio agentsim / raw: {framework_rate / raw_rate:.2f} (budget >= 0.90); "
          f"identical outputs: {same_output} of {len(calls)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--local-calls", type=int, default=15)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    scripted_overhead(args.replicates)
    if not args.skip_local:
        local_ratio(args.local_calls)


if __name__ == "__main__":
    main()
