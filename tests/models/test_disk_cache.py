"""The SQLite cache of model calls: one file a folder, writes off the event loop, shared by
processes, bounded with least-recently-used eviction, old JSON folders and foreign files."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import multiprocessing
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from agentsim.models.base import ModelRequest
from agentsim.models.cache import DB_NAME, DiskCache, cache_key

REPO = Path(__file__).resolve().parents[2]
BASE = ModelRequest(model="scripted/fair", messages=[{"role": "user", "content": "hi"}],
                    seed=7, replicate=0)


def request(n: int, tag: str = "") -> ModelRequest:
    return dataclasses.replace(BASE, messages=[{"role": "user", "content": f"{tag}question {n}"}])


def answer(text: str) -> dict:
    return {"text": text, "prompt_tokens": 3, "completion_tokens": 2, "endpoint": None}


def rows(folder: Path) -> int:
    with closing(sqlite3.connect(folder / DB_NAME)) as db:
        return db.execute("SELECT count(*) FROM calls").fetchone()[0]


def test_hit_miss_and_one_database_file(tmp_path):
    cache = DiskCache(tmp_path / "c")
    assert not (tmp_path / "c").exists()  # lazy: a client that never calls makes nothing
    assert cache.get(BASE) is None
    cache.put(BASE, answer("hello"))
    assert cache.get(BASE) == answer("hello")
    assert cache.get(dataclasses.replace(BASE, replicate=1)) is None
    assert cache.get(BASE, "https://other.example/v1") is None  # another endpoint, another key
    cache.close()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [DB_NAME]  # WAL checkpointed
    with closing(sqlite3.connect(tmp_path / "c" / DB_NAME)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT key FROM calls").fetchall() == [(cache_key(BASE),)]
    assert DiskCache(tmp_path / "c").get(BASE)["text"] == "hello"  # reopened after close


def test_pending_writes_are_read_back_before_they_are_committed(tmp_path):
    cache = DiskCache(tmp_path)
    cache.put(request(0), answer("first"))
    assert cache.flush(10)
    other = sqlite3.connect(tmp_path / DB_NAME, timeout=10, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock: nothing commits
    try:
        for n in range(1, 50):
            cache.put(request(n), answer(f"a{n}"))
        assert all(cache.get(request(n))["text"] == f"a{n}" for n in range(1, 50))
        assert DiskCache(tmp_path).get(request(7))["text"] == "a7"  # same process, same store
        assert not cache.flush(0.2)  # the writer waits for the lock
        assert other.execute("SELECT count(*) FROM calls").fetchone()[0] == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert cache.flush(30)
    assert rows(tmp_path) == 50


def test_flush_on_close_and_at_interpreter_exit(tmp_path):
    cache = DiskCache(tmp_path / "closed")
    for n in range(300):
        cache.put(request(n), answer(str(n)))
    cache.close()
    assert rows(tmp_path / "closed") == 300
    script = ("import dataclasses; from agentsim.models.base import ModelRequest;"
              "from agentsim.models.cache import DiskCache;"
              f"c = DiskCache({str(tmp_path / 'exit')!r});"
              "r = ModelRequest(model='scripted/fair', messages=[], seed=1);"
              "[c.put(dataclasses.replace(r, seed=n), {'text': str(n)}) for n in range(500)]")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=120)
    assert rows(tmp_path / "exit") == 500  # no close(): flushed by the atexit hook


def _worker(folder: str, tag: str, other: str, barrier, results) -> None:
    cache = DiskCache(folder)
    barrier.wait()
    for n in range(200):
        cache.put(request(n, tag), answer(f"{tag}{n}"))
        cache.put(request(n, "shared"), answer(f"shared{n}"))  # both write the same keys
        if n % 20 == 0:
            cache.get(request(n, other))
    assert cache.flush(60)
    barrier.wait()  # both have committed everything
    seen = sum((hit := cache.get(request(n, other))) is not None and hit["text"] == f"{other}{n}"
               for n in range(200))
    shared = sum(cache.get(request(n, "shared"))["text"] == f"shared{n}" for n in range(200))
    results.put((tag, seen, shared))
    cache.close()


def test_two_processes_share_one_folder(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_worker, args=(str(tmp_path), a, b, barrier, results))
               for a, b in (("left", "right"), ("right", "left"))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in workers) == [("left", 200, 200),
                                                               ("right", 200, 200)]
    assert rows(tmp_path) == 600


def test_eviction_keeps_the_bound_and_drops_the_least_recently_used(tmp_path):
    cache = DiskCache(tmp_path, max_mb=0.25)
    keep = [request(n, "keep") for n in range(10)]
    for item in keep:
        cache.put(item, answer("k" * 500))
    filler = "x" * 500
    for batch in range(20):  # 2,000 entries of ~0.6 kB: about 5 times the bound
        for item in keep:
            assert cache.get(item) is not None  # used: recently
        for n in range(100):
            cache.put(request(batch * 100 + n), answer(filler))
        assert cache.flush(30)
    with closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        size = db.execute("PRAGMA page_count").fetchone()[0] * \
            db.execute("PRAGMA page_size").fetchone()[0]
        keys = {k for (k,) in db.execute("SELECT key FROM calls")}
    assert size <= cache.max_bytes
    assert all(cache_key(item) in keys for item in keep)
    assert cache_key(request(0)) not in keys and cache_key(request(1999)) in keys
    survivors = [n for n in range(2000) if cache_key(request(n)) in keys]
    assert survivors == list(range(survivors[0], 2000))  # the oldest went first
    assert 100 < len(survivors) < 400
    cache.close()
    assert (tmp_path / DB_NAME).stat().st_size <= cache.max_bytes


def test_the_bound_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTSIM_CACHE_MAX_MB", "3.5")
    assert DiskCache(tmp_path).max_bytes == int(3.5 * 1024 * 1024)
    assert DiskCache(tmp_path, max_mb=1).max_bytes == 1024 * 1024


def test_puts_never_block_the_event_loop(tmp_path):
    cache = DiskCache(tmp_path)
    cache.put(request(-1), answer("warm"))
    assert cache.flush(10)
    items = [request(n) for n in range(1000)]
    keys = [cache_key(item) for item in items]
    other = sqlite3.connect(tmp_path / DB_NAME, timeout=10, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # even while the disk is unavailable to this process

    async def puts() -> float:
        started = time.perf_counter()
        for item in items:
            cache.put(item, answer("some text " * 20))
        return (time.perf_counter() - started) / len(items)

    try:
        mean = asyncio.run(puts())
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert mean < 0.0002, f"{mean * 1e6:.0f} µs a put"
    assert cache.flush(30)
    with closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        stored = {k for (k,) in db.execute("SELECT key FROM calls")}
    assert set(keys) <= stored


def test_an_old_json_folder_still_answers(tmp_path):
    key = cache_key(BASE)
    (tmp_path / key[:2]).mkdir()
    (tmp_path / key[:2] / f"{key}.json").write_text(json.dumps(answer("from 2025")))
    cache = DiskCache(tmp_path)
    assert cache.get(BASE)["text"] == "from 2025"
    assert cache.get(request(1)) is None
    cache.close()
    assert rows(tmp_path) == 1  # copied into the database


def test_a_foreign_file_at_the_database_path_turns_the_cache_off(tmp_path, caplog):
    (tmp_path / DB_NAME).write_bytes(b"not a database, just some bytes" * 100)
    before = (tmp_path / DB_NAME).read_bytes()
    cache = DiskCache(tmp_path)
    with caplog.at_level("WARNING", "agentsim.models.cache"):
        assert cache.get(BASE) is None
        cache.put(BASE, answer("hi"))
        assert cache.get(BASE) is None and cache.disabled
    assert "not a usable cache database" in caplog.text and str(tmp_path / DB_NAME) in caplog.text
    cache.close()
    assert (tmp_path / DB_NAME).read_bytes() == before  # never overwritten


def test_the_cli_runs_on_without_a_traceback_past_a_foreign_file(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / DB_NAME).write_text("hello")
    scenario = REPO / "scenarios" / "workplace" / "family-shared-flat-move.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "agentsim", "run", str(scenario), "--model", "scripted/fair",
         "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
         "--setting", "no-interaction"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "model-call cache off" in done.stderr and DB_NAME in done.stderr


def test_a_cache_travels_to_a_worker_process_as_its_folder(tmp_path):
    cache = DiskCache(tmp_path, max_mb=5)
    cache.put(BASE, answer("hi"))
    copy = pickle.loads(pickle.dumps(cache))
    assert (copy.folder, copy.max_mb) == (tmp_path, 5.0)
    assert copy.get(BASE)["text"] == "hi"
