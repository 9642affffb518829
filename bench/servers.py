"""The same scenarios in-process and through a model server on the same weights, back to back.

Starts llama-cpp-python's OpenAI-compatible server on 127.0.0.1 with the embedded SmolLM2
weights, then runs the chosen workplace scenarios twice with the same seed and the cache off:
once on ``local/smollm2-135m-instruct`` (in-process) and once on ``openai/smollm2`` through the
server. Prints, for each side: wall time, model calls, decisions parsed, how they were
constrained, and the headline bias metrics; then the ratio of wall times. Finally agentsim's
overhead per HTTP call: the run's logged decision requests replayed interleaved, each once
through agentsim's client and once as a bare HTTP POST of the same body.

Usage: python bench/servers.py [--tag demo] [--limit 4] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.llama_server import LlamaServer  # noqa: E402

from agentsim.models.base import ModelRequest  # noqa: E402
from agentsim.runs.runner import RunOptions, build_client, run_experiment  # noqa: E402
from agentsim.core.store import RunStore  # noqa: E402
from agentsim.scenario import load_scenarios  # noqa: E402


def one_side(scenarios: list, model: str, api_base: str | None, rounds: int,
             out: Path) -> dict:
    options = RunOptions(model=model, rounds=rounds, seed=0, cache=False, concurrency=1,
                         endpoint_options={model: {"api_base": api_base}} if api_base else {})
    started = time.perf_counter()
    summary = run_experiment(scenarios, options, out=out)
    wall = time.perf_counter() - started
    parsing = summary.results["parsing"]
    calls = list(RunStore.open(out).iter_events({"model_call"}))
    metrics = summary.results["metrics"]
    return {"wall_s": wall, "calls": len(calls), "decisions": parsing["decisions"],
            "unparsed": parsing["unparsed"],
            "modes": sorted({c.structured_mode for c in calls if c.structured_mode}),
            **{name: metrics.get(name, {}).get("value") for name in
               ("bias_first", "bias_last", "escalation")}}


async def overhead(run_dir: Path, model: str, api_base: str, pairs: int) -> tuple[float, int]:
    """Mean seconds agentsim adds per call over a bare POST of the same request."""
    import httpx

    options = RunOptions(model=model, cache=False,
                         endpoint_options={model: {"api_base": api_base,
                                                   "structured": "json_object"}})
    client = build_client(options)
    from agentsim.models import _litellm

    calls = [c for c in RunStore.open(run_dir).iter_events({"model_call"})
             if c.purpose == "decision"][:pairs]
    deltas = []
    async with httpx.AsyncClient(timeout=120) as bare:
        for call in calls:
            # The same messages and sampling, unconstrained on both sides (the log keeps the
            # prompt, not the schema).
            request = ModelRequest(model=model, messages=call.messages,
                                   temperature=call.temperature or 0.7,
                                   max_tokens=call.max_tokens or 200, seed=call.call_seed or 0)
            kwargs, _ = _litellm.call_kwargs(client.endpoint(model), request, 120)
            body = {k: kwargs[k] for k in ("messages", "temperature", "max_tokens", "seed")}
            body["model"] = "smollm2"
            started = time.perf_counter()
            await bare.post(f"{api_base}/chat/completions", json=body)
            raw = time.perf_counter() - started
            started = time.perf_counter()
            await client.complete(request)
            ours = time.perf_counter() - started
            deltas.append(ours - raw)
    return mean(deltas), len(deltas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="demo")
    parser.add_argument("--limit", type=int, default=4, help="scenarios to run (0: all)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=12, help="calls replayed for overhead")
    args = parser.parse_args()
    scenarios = [(p, s) for p, s in load_scenarios([ROOT / "scenarios" / "workplace"])
                 if args.tag in s.tags]
    scenarios = scenarios[: args.limit] if args.limit else scenarios
    with LlamaServer(alias="smollm2") as server, tempfile.TemporaryDirectory() as tmp:
        local = one_side(scenarios, "local/smollm2-135m-instruct", None, args.rounds,
                         Path(tmp) / "local")
        http = one_side(scenarios, "openai/smollm2", server.base_url, args.rounds,
                        Path(tmp) / "http")
        added, pairs = asyncio.run(overhead(Path(tmp) / "http", "openai/smollm2",
                                            server.base_url, args.pairs))
    for name, side in (("in-process", local), ("http", http)):
        print(f"{name:10s} wall {side['wall_s']:.1f} s, {side['calls']} calls, decisions "
              f"{side['decisions'] - side['unparsed']}/{side['decisions']} parsed, modes "
              f"{side['modes']}, bias_first {side['bias_first']}, bias_last "
              f"{side['bias_last']}, escalation {side['escalation']}")
    print(f"ratio http/in-process wall time {http['wall_s'] / local['wall_s']:.2f} "
          f"({len(scenarios)} scenarios, rounds {args.rounds}, seed 0, cache off, "
          f"concurrency 1); agentsim adds {added * 1000:.1f} ms per HTTP call over a bare POST "
          f"({pairs} pairs, interleaved)")


if __name__ == "__main__":
    main()
