"""The cache of model calls: keys, hits marked in the log, replicates kept apart, --no-cache."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing

from agentsim.models.base import ModelRequest
from agentsim.models.cache import DB_NAME, DiskCache, cache_key
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios

BASE = ModelRequest(model="scripted/fair", messages=[{"role": "user", "content": "hi"}],
                    seed=7, replicate=0)


def test_every_part_of_a_request_is_in_the_key():
    changes = {"model": "scripted/clinical", "messages": [{"role": "user", "content": "ho"}],
               "schema": {"type": "object"}, "temperature": 0.1, "max_tokens": 9, "seed": 8,
               "replicate": 1, "purpose": "decision"}
    keys = {cache_key(BASE)}
    for field, value in changes.items():
        keys.add(cache_key(dataclasses.replace(BASE, **{field: value})))
    assert len(keys) == len(changes) + 1
    # The scripted model's private context is not part of what a model answers to.
    assert cache_key(dataclasses.replace(BASE, context={"x": 1})) == cache_key(BASE)


def test_store_and_read_back(tmp_path):
    cache = DiskCache(tmp_path)
    assert cache.get(BASE) is None
    cache.put(BASE, {"text": "hello", "prompt_tokens": 1, "completion_tokens": 1})
    assert cache.get(BASE)["text"] == "hello"
    assert cache.get(dataclasses.replace(BASE, replicate=1)) is None


def run(tmp_path, workplace, name, **options):
    scenarios = load_scenarios([workplace / "office-product-launch.yaml"])
    summary = run_experiment(scenarios, RunOptions(model="scripted/stereotyped?rate=0.5",
                                                   replicates=2, **options),
                             out=tmp_path / name)
    return RunStore.open(summary.run_dir), summary


def test_rerun_is_served_from_the_cache_with_the_same_results(tmp_path, workplace):
    first, a = run(tmp_path, workplace, "first", cache_dir=str(tmp_path / "cache"))
    second, b = run(tmp_path, workplace, "second", cache_dir=str(tmp_path / "cache"))
    calls1, calls2 = list(first.iter_events({"model_call"})), list(second.iter_events({"model_call"}))
    assert not any(c.cached for c in calls1) and all(c.cached for c in calls2)
    assert [c.response for c in calls1] == [c.response for c in calls2]
    assert a.results["metrics"] == b.results["metrics"]
    # Two replicates: their calls are different cache entries, not one answer reused.
    by_replicate = {c.replicate: c.response for c in calls1 if c.purpose == "decision"}
    assert len(by_replicate) == 2
    with closing(sqlite3.connect(tmp_path / "cache" / DB_NAME)) as db:  # one row a call
        (rows,) = db.execute("SELECT count(*) FROM calls").fetchone()
    assert rows == len({(c.replicate, c.call_seed, c.purpose, c.agent) for c in calls1})
    assert [p.name for p in (tmp_path / "cache").iterdir()
            if not p.name.startswith(DB_NAME)] == []


def test_no_cache_reads_and_writes_nothing(tmp_path, workplace):
    store, _ = run(tmp_path, workplace, "off", cache=False, cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()
    assert not any(c.cached for c in store.iter_events({"model_call"}))
