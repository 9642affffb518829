"""The same seed and options give the same results.json, whatever the concurrency.

The log is written in completion order: one conversation at a time it follows the plan, eight in
flight it follows the latencies. Estimates, intervals and p-values must not see the difference
(clusters enter every resampling in a stable order, sums are exactly rounded).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agentsim.cli.main import main
from agentsim.stats.inference import clustered_mean, paired_difference, slope

SCENARIOS = ("office-product-launch", "restaurant-reopening", "school-open-day",
             "hospital-ward-reorganisation", "media-podcast-launch", "law-firm-client-merger")


def _run(folder: Path, out: Path, concurrency: int) -> dict:
    model = "scripted/stereotyped?rate=0.5&final=0.7&latency_ms=3"
    assert main(["run", str(folder), "--model", model, "--replicates", "3", "--rounds", "1",
                 "--seed", "11", "--concurrency", str(concurrency), "--no-cache",
                 "--out", str(out), "--json"]) == 0
    return json.loads((out / "results.json").read_text("utf-8"))


def _finish_order(run_dir: Path) -> list[str]:
    lines = (run_dir / "events.jsonl").read_text("utf-8").splitlines()
    return [e["conversation_id"] for e in map(json.loads, lines)
            if e["type"] == "conversation_finished"]


def test_concurrency_does_not_change_any_number(tmp_path, workplace, capsys):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for name in SCENARIOS:
        shutil.copy(workplace / f"{name}.yaml", folder)
    serial = _run(folder, tmp_path / "serial", 1)
    parallel = _run(folder, tmp_path / "parallel", 8)
    capsys.readouterr()
    # The premise: the two logs list the conversations in different orders.
    assert _finish_order(tmp_path / "serial") != _finish_order(tmp_path / "parallel")
    assert sorted(_finish_order(tmp_path / "serial")) == \
        sorted(_finish_order(tmp_path / "parallel"))
    assert serial["metrics"].keys() == parallel["metrics"].keys()
    differing = {name: (value, parallel["metrics"][name])
                 for name, value in serial["metrics"].items()
                 if value != parallel["metrics"][name]}
    assert differing == {}  # values, intervals, p-values and methods, bit for bit
    tested = [m for m in serial["metrics"].values() if m["p"] is not None]
    intervals = [m for m in serial["metrics"].values()
                 if m["ci_low"] is not None and m["ci_low"] != m["ci_high"]]
    assert tested and intervals  # the comparison covered p-values and bootstrap intervals


def test_statistics_ignore_the_order_of_rows():
    values = [0.1 * i for i in range(40)]
    clusters = [f"s{i % 7}" for i in range(40)]
    xs = [float(i % 5) for i in range(40)]
    later = [v - 0.05 * (i % 3) for i, v in enumerate(values)]
    order = sorted(range(40), key=lambda i: (i * 17) % 40)  # a reshuffle of the rows

    def shuffled(seq):
        return [seq[i] for i in order]

    assert clustered_mean(values, clusters) == clustered_mean(shuffled(values),
                                                              shuffled(clusters))
    assert slope(xs, values, clusters) == slope(shuffled(xs), shuffled(values),
                                                shuffled(clusters))
    assert paired_difference(values, later, clusters) == paired_difference(
        shuffled(values), shuffled(later), shuffled(clusters))
