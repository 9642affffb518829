"""Reliability of run folders: one writer (an OS lock), exclusive creation, --out refusals,
damaged logs reported with their line numbers by every reader, atomic results, SIGTERM/SIGHUP,
races between writers, and SIGKILL during a write, during judging and during a fork.

Kills and signals use real subprocesses (``python -c`` scripts that patch a function to pause at
the moment to hit, then get killed); everything else calls the CLI in-process. The tests run as
root, which writes read-only folders anyway: the read-only refusals are tested by patching.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.errors import RunStoreError
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import LOCK, RunExistsError, RunLock, RunLockedError, RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.variants import BASE_VARIANT

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
MODEL = "scripted/stereotyped?rate=0.5&final=0.7&latency_ms=20"
FAST = "scripted/stereotyped?rate=0.5&final=0.7"
COMMON = ["--no-variants", "--rounds", "1", "--seed", "3", "--concurrency", "2"]
PAUSE = 60  # seconds a patched child sleeps at the moment it is to be killed


def run_args(out: Path, *extra: str, model: str = MODEL, replicates: int = 4) -> list[str]:
    return ["run", str(SCENARIO), "--model", model, "--replicates", str(replicates), *COMMON,
            "--out", str(out), "--json", *extra]


def finished_ids(run_dir: Path) -> list[str]:
    """Conversation ids of the finished conversations, as every reader sees them."""
    return [e.conversation_id for e in RunStore.open(run_dir).iter_events(
        {"conversation_finished"})]


def conversations(run_dir: Path) -> dict[str, list[tuple]]:
    """conversation id → its messages and decisions (what an uninterrupted run must equal)."""
    found: dict[str, list[tuple]] = {}
    for event in RunStore.open(run_dir).iter_events({"message", "decision"}):
        item = (event.type, event.turn, event.agent,
                getattr(event, "content", None) or json.dumps(getattr(event, "value", None)))
        found.setdefault(event.conversation_id, []).append(item)
    return found


def judge_counts(run_dir: Path) -> Counter:
    return Counter((e.judge, e.conversation_id, e.target, e.agent, e.turn)
                   for e in RunStore.open(run_dir).iter_events({"judge_result"}))


def raw_judge_lines(run_dir: Path) -> int:
    return (run_dir / "events.jsonl").read_text().count('"judge_result"')


def child(script: str, *argv: str) -> subprocess.Popen:
    """A python process running ``script`` (which ends by calling the CLI with ``argv``)."""
    code = ("import sys, os, time\nfrom pathlib import Path\n" + script +
            "\nfrom agentsim.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")
    return subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def wait_for(predicate, process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the child ended early ({process.returncode}): "
                                 f"{process.stderr.read()}")
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def kill(process: subprocess.Popen, signum: int = signal.SIGKILL) -> int:
    os.kill(process.pid, signum)
    return process.wait(timeout=60)


def pause_at(marker: Path, target: str) -> str:
    """A patch for a child: when ``target`` (``module:function`` or ``module:Class.method``) is
    called, touch ``marker`` and sleep (the parent then signals or kills the child)."""
    module, name = target.split(":")
    owner, _, attribute = name.rpartition(".")
    lookup = f"_holder = getattr(_holder, {owner!r})\n" if owner else ""
    return (f"import importlib\n_holder = importlib.import_module({module!r})\n{lookup}"
            f"_original = getattr(_holder, {attribute!r})\n"
            f"def _paused(*args, **kwargs):\n"
            f"    Path({str(marker)!r}).touch()\n"
            f"    time.sleep({PAUSE})\n"
            f"    return _original(*args, **kwargs)\n"
            f"setattr(_holder, {attribute!r}, _paused)\n")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run (no cache): what every interrupted run must come back to."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(run_args(out, "--no-cache")) == 0
    return out


def assert_same_as(run_dir: Path, reference: Path) -> None:
    ids = finished_ids(run_dir)
    assert len(ids) == len(set(ids)) == len(finished_ids(reference))  # each exactly once
    assert conversations(run_dir) == conversations(reference)
    assert judge_counts(run_dir) == judge_counts(reference)  # judged once, not twice
    ours = json.loads((run_dir / "results.json").read_text())["metrics"]
    theirs = json.loads((reference / "results.json").read_text())["metrics"]
    for name in ("bias_first", "bias_last", "escalation"):
        assert ours[name] == theirs[name], name


# -- one writer: the lock ----------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    with RunLock(folder, "agentsim resume"):
        with pytest.raises(RunLockedError) as refused:
            RunLock(folder, "agentsim judge").acquire()
        message = str(refused.value)
        assert f"pid {os.getpid()}" in message and "'agentsim resume'" in message
        assert "Wait for it to finish" in message and "agentsim resume" in message
    assert not (folder / LOCK).exists()  # released and removed
    RunLock(folder, "agentsim judge").acquire().release()  # free again


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    marker = tmp_path / "locked"
    holder = child(f"from agentsim.core.store import RunLock\n"
                   f"RunLock(Path({str(folder)!r}), 'agentsim run').acquire()\n"
                   f"Path({str(marker)!r}).touch()\ntime.sleep({PAUSE})\n")
    wait_for(marker.exists, holder)
    with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
        RunLock(folder, "agentsim judge").acquire()
    kill(holder)
    RunLock(folder, "agentsim judge").acquire().release()  # the kernel dropped the lock


def test_creation_is_exclusive_and_run_ids_do_not_collide(tmp_path, monkeypatch):
    RunStore.create(tmp_path / "a", {"run_id": "one"})
    with pytest.raises(RunExistsError, match="already holds a run"):
        RunStore.create(tmp_path / "a", {"run_id": "two"})
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["run_id"] == "one"
    # Two runs drawing the same id into the default folder: the second draws again.
    import agentsim.runs.runner as runner

    drawn = iter(["20250101-000000-aaaaaa", "20250101-000000-aaaaaa", "20250101-000000-bbbbbb"])
    monkeypatch.setattr(runner, "new_run_id", lambda: next(drawn))
    scenarios = load_scenarios([SCENARIO])
    options = RunOptions(model=FAST, rounds=1, variants=(BASE_VARIANT,))
    first = run_experiment(scenarios, options, runs_root=tmp_path / "runs")
    second = run_experiment(scenarios, options, runs_root=tmp_path / "runs")
    assert (first.run_dir.name, second.run_dir.name) == ("20250101-000000-aaaaaa",
                                                         "20250101-000000-bbbbbb")
    for summary in (first, second):
        manifest = json.loads((summary.run_dir / "manifest.json").read_text())
        assert manifest["run_id"] == summary.run_dir.name


def test_two_runs_into_one_folder_at_once_threads(tmp_path):
    """20 tries, two threads released together by a barrier: exactly one run each time."""
    scenarios = load_scenarios([SCENARIO])
    options = RunOptions(model="scripted/fair", rounds=0, variants=(BASE_VARIANT,),
                         cache=False)
    for attempt in range(20):
        out = tmp_path / f"try{attempt}"
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def start() -> None:
            barrier.wait()
            try:
                outcomes.append(run_experiment(scenarios, options, out=out))
            except RunStoreError as error:
                outcomes.append(error)

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refused = [o for o in outcomes if isinstance(o, RunStoreError)]
        assert len(refused) == 1, outcomes
        assert "being written by" in str(refused[0]) or "already holds a run" in str(refused[0])
        assert len(finished_ids(out)) == 1  # one conversation: the winner's, once


def test_two_runs_into_one_folder_at_once_processes(tmp_path):
    out = tmp_path / "run"
    processes = [child("", *run_args(out, replicates=2)) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
    assert sorted(code for code, _ in results) == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert "Traceback" not in refusal
    assert "being written by 'agentsim run'" in refusal or "already holds a run" in refusal
    assert len(finished_ids(out)) == 2  # the winner's two conversations, once each


def test_resume_during_a_run_is_refused(tmp_path):
    out = tmp_path / "run"
    marker = tmp_path / "running"
    run = child(pause_at(marker, "agentsim.runs.runner:execute"), *run_args(out, "--no-cache"))
    wait_for(marker.exists, run)
    assert main(["resume", str(out)]) == 2
    assert main(["judge", str(out)]) == 2
    assert main(["replay", str(out), "--conversation", "office-product-launch.base.none.r0",
                 "--from-turn", "0", "--out", str(out)]) == 2  # a fork into a busy folder
    kill(run, signal.SIGTERM)  # ... and the run it waited for ends cleanly
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and finished_ids(out) == []


def test_the_refusal_names_the_pid_and_command(tmp_path, capsys):
    out = tmp_path / "run"
    marker = tmp_path / "running"
    run = child(pause_at(marker, "agentsim.runs.runner:execute"), *run_args(out))
    try:
        wait_for(marker.exists, run)
        capsys.readouterr()
        assert main(["resume", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"pid {run.pid}" in err and "'agentsim run'" in err and "Traceback" not in err
        assert err.count("error:") == 1
    finally:
        kill(run)


def test_judge_during_a_resume_is_refused(tmp_path, reference, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "results.json").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(manifest | {"status": "interrupted"}))
    marker = tmp_path / "resuming"
    resume = child(pause_at(marker, "agentsim.runs.resume:_resume"), "resume", str(out))
    try:
        wait_for(marker.exists, resume)
        capsys.readouterr()
        assert main(["judge", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"pid {resume.pid}" in err and "'agentsim resume'" in err
        assert not (out / "results.json").exists()  # the refused judge wrote nothing
    finally:
        kill(resume)


# -- --out that cannot be a run folder -----------------------------------------------------------


def _refused(capsys, argv: list[str], *fragments: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_out_at_a_file_under_a_file_or_a_dangling_link(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for target, fragment in ((afile, "is a file"), (afile / "run", "afile is a file"),
                             (dangling, "symbolic link"), (dangling / "run", "dangling")):
        _refused(capsys, run_args(target, replicates=1), "--out", fragment)
    _refused(capsys, ["import", "transcript", str(REPO / "tests" / "runs" / "x.jsonl"),
                      "--out", str(afile)], "is a file")
    assert afile.read_text() == "x" and not (tmp_path / "nowhere").exists()


def test_out_in_a_read_only_folder(tmp_path, capsys, monkeypatch):
    # Root writes read-only folders, so the refusals are driven by patching what the OS says.
    parent = tmp_path / "ro"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).startswith(
        str(parent)) else real_access(p, mode, **kw))
    _refused(capsys, run_args(parent / "run", replicates=1), "not writable")
    _refused(capsys, run_args(parent, replicates=1), "not writable")
    monkeypatch.setattr(os, "access", real_access)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(Path, "mkdir", refuse)
    _refused(capsys, run_args(parent / "run", replicates=1), "permission denied")
    assert list(parent.iterdir()) == []


# -- damaged logs ----------------------------------------------------------------------------------


@pytest.fixture
def damaged(tmp_path, reference) -> tuple[Path, int]:
    """A copy of the reference run whose log has a corrupt line in the middle."""
    out = tmp_path / "damaged"
    shutil.copytree(reference, out)
    lines = (out / "events.jsonl").read_text().splitlines(keepends=True)
    middle = len(lines) // 2
    lines[middle] = '{"type": "message", "run_id": "x", "speaker": 3}\n'  # schema-invalid
    (out / "events.jsonl").write_text("".join(lines))
    return out, middle + 1


READERS = [
    ["judge", "{run}"],
    ["resume", "{run}"],
    ["export", "{run}", "--out", "{tmp}/export"],
    ["replay", "{run}"],
    ["replay", "{run}", "--conversation", "office-product-launch.base.none.r0", "--from-turn",
     "0", "--out", "{tmp}/fork", "--model", FAST],
]


@pytest.mark.parametrize("argv", READERS, ids=["judge", "resume", "export", "replay", "fork"])
def test_every_reader_names_the_bad_line_and_skips_it_only_when_told(argv, damaged, tmp_path,
                                                                     capsys):
    run, line = damaged
    results = (run / "results.json").read_bytes()
    command = [part.format(run=run, tmp=tmp_path) for part in argv]
    _refused(capsys, command, f"events.jsonl:{line}:", "invalid message event",
             "--skip-bad-lines")
    assert (run / "results.json").read_bytes() == results  # nothing judged on less data
    assert not (tmp_path / "export").exists() and not (tmp_path / "fork").exists()
    assert main([*command, "--skip-bad-lines"]) == 0
    output = capsys.readouterr()
    if command[0] in ("judge", "export"):
        assert "1 damaged line(s) of events.jsonl skipped" in output.out + output.err
    if command[0] == "judge":
        stored = json.loads((run / "results.json").read_text())["skipped_lines"]
        assert stored == {"count": 1, "lines": [{"line": line, "reason": stored["lines"][0][
            "reason"]}]}


def test_a_non_utf8_line_is_named(damaged, capsys):
    run, line = damaged
    with open(run / "events.jsonl", "ab") as log:
        log.write(b'{"type": "run_finished", "run_id": "\xff\xfe"}\n')
    last = (run / "events.jsonl").read_bytes().count(b"\n")
    lines = (run / "events.jsonl").read_bytes().splitlines()
    del lines[line - 1]  # only the non-UTF-8 line is bad now
    (run / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    _refused(capsys, ["judge", str(run)], f"events.jsonl:{last - 1}: not UTF-8")
    assert main(["judge", str(run), "--skip-bad-lines", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_lines"] == 1


def test_a_partial_last_line_is_tolerated(tmp_path, reference):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    with open(run / "events.jsonl", "a") as log:
        log.write('{"type": "message", "run_id": "x", "spea')  # a kill mid-write
    assert main(["judge", str(run)]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "export")]) == 0


def test_runs_list_shows_damage_and_lists_the_rest(tmp_path, reference, damaged, capsys):
    run, line = damaged
    root = run.parent
    shutil.copytree(reference, root / "good")
    # The listing parses only the lines it counts (conversation starts and finishes): a corrupt
    # line anywhere is damage, a schema-invalid line of another type is found by `runs show`.
    shutil.copytree(reference, root / "corrupt")
    lines = (root / "corrupt" / "events.jsonl").read_text().splitlines(keepends=True)
    lines[line - 1] = "{half\n"
    (root / "corrupt" / "events.jsonl").write_text("".join(lines))
    for name, data in (("not-utf8", b'{"run_id": "\xff"}'), ("not-json", b"{half"),
                       ("not-a-manifest", b"[1, 2]")):
        (root / name).mkdir()
        (root / name / "manifest.json").write_bytes(data)
    capsys.readouterr()
    assert main(["runs", "list", "--root", str(root), "--json"]) == 0
    rows = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert rows["good"]["status"] == "finished"
    assert rows["damaged"]["status"] == "finished"  # its bad line is not one the list reads
    assert rows["corrupt"]["status"] == "damaged"
    assert rows["corrupt"]["recorded_status"] == "finished"
    assert f"events.jsonl:{line}" in rows["corrupt"]["error"]
    for name in ("not-utf8", "not-json", "not-a-manifest"):
        assert rows[name]["status"] == "damaged" and "unreadable" in rows[name]["error"], name
    assert main(["runs", "list", "--root", str(root)]) == 0  # the table renders them too
    assert "damaged" in capsys.readouterr().out
    assert main(["runs", "show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["damaged_lines"]["count"] == 1
    assert shown["damaged_lines"]["lines"][0]["line"] == line
    assert main(["runs", "show", str(run)]) == 0
    assert f"line {line}:" in capsys.readouterr().out


# -- results.json replaced atomically -----------------------------------------------------------


def test_a_judge_that_dies_leaves_the_old_results(tmp_path, reference, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = (run / "results.json").read_bytes()
    from agentsim.judges.assignment_judge import AssignmentTally

    def dies(self, conversation):  # killed in the middle of the judging pass
        raise KeyboardInterrupt
    monkeypatch.setattr(AssignmentTally, "add", dies)
    assert main(["judge", str(run)]) == 130
    assert (run / "results.json").read_bytes() == before
    assert sorted(p.name for p in run.glob("results*.json")) == ["results.json"]
    assert not (run / LOCK).exists()


# -- signals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_ends_the_run_cleanly_and_resume_finishes_it(signum, tmp_path, reference):
    out = tmp_path / "run"
    run = child("", *run_args(out, "--no-cache"))
    wait_for(lambda: len(finished_ids(out)) >= 1 if (out / "manifest.json").exists()
             else False, run)
    code = kill(run, signum)
    err = run.stderr.read()
    assert code == 128 + signum, err
    assert "Traceback" not in err and f"agentsim resume {out}" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert not (out / LOCK).exists() and not (out / "results.json").exists()
    done = len(finished_ids(out))
    assert 0 < done < 4
    assert main(["resume", str(out), "--json"]) == 0
    assert_same_as(out, reference)


# -- kills ---------------------------------------------------------------------------------------


def test_killed_during_a_write_resumes_to_the_same_run(tmp_path, reference):
    out = tmp_path / "run"
    marker = tmp_path / "writing"
    # The third conversation_finished is written half, flushed, and the process killed.
    script = f"""
from agentsim.core import store as _store
_append, _seen = _store.RunStore.append, []
def _half(self, event):
    if event.type == "conversation_finished":
        _seen.append(1)
        if len(_seen) == 3:
            line = event.model_dump_json(exclude_none=True)
            with open(self.run_dir / "events.jsonl", "a") as log:
                log.write(line[: len(line) // 2])
            Path({str(marker)!r}).touch()
            time.sleep({PAUSE})
    return _append(self, event)
_store.RunStore.append = _half
"""
    run = child(script, *run_args(out, "--no-cache"))
    wait_for(marker.exists, run)
    kill(run)
    assert not (out / "events.jsonl").read_bytes().endswith(b"\n")  # a line cut short
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    assert main(["resume", str(out)]) == 0
    assert (out / "events.jsonl").read_bytes().endswith(b"\n")
    assert_same_as(out, reference)


def test_killed_while_judging_a_new_run(tmp_path, reference):
    out = tmp_path / "run"
    marker = tmp_path / "judging"
    # Killed after some judge results were appended, before results.json was written.
    script = f"""
from agentsim.core import store as _store
_append, _seen = _store.RunStore.append, []
def _pause(self, event):
    result = _append(self, event)
    if event.type == "judge_result":
        _seen.append(1)
        if len(_seen) == 5:
            Path({str(marker)!r}).touch()
            time.sleep({PAUSE})
    return result
_store.RunStore.append = _pause
_lines = _store.RunStore.append_lines
def _pause_lines(self, lines, batch=1000):  # verdicts logged as serialised, one at a time here
    count = 0
    for line in lines:
        count += _lines(self, [line])
        _seen.append(1)
        if len(_seen) == 5:
            Path({str(marker)!r}).touch()
            time.sleep({PAUSE})
    return count
_store.RunStore.append_lines = _pause_lines
"""
    run = child(script, *run_args(out, "--no-cache"))
    wait_for(marker.exists, run)
    kill(run)
    assert not (out / "results.json").exists()
    assert raw_judge_lines(out) == 5
    assert main(["resume", str(out)]) == 0  # nothing to run: judged again, in full
    assert raw_judge_lines(out) == 5 + raw_judge_lines(reference)
    assert_same_as(out, reference)  # the interrupted judging is not counted


@pytest.mark.parametrize("moment", ["judging", "replacing"])
def test_killed_during_agentsim_judge_keeps_old_or_new_results(moment, tmp_path, reference):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = (run / "results.json").read_bytes()
    marker = tmp_path / "paused"
    target = ("agentsim.runs.judging:judge_run" if moment == "judging"
              else "agentsim.core.store:RunStore.write_results")
    judge = child(pause_at(marker, target), "judge", str(run), "--judges", "assignment_bias")
    wait_for(marker.exists, judge)
    kill(judge)
    assert (run / "results.json").read_bytes() == before  # the old results, whole
    archives = sorted(p for p in run.glob("results.*.json"))
    assert len(archives) == (1 if moment == "replacing" else 0)
    if archives:
        assert archives[0].read_bytes() == before
    assert main(["judge", str(run), "--judges", "assignment_bias"]) == 0  # then the new ones
    new = json.loads((run / "results.json").read_text())
    assert new["judges"] == ["assignment_bias"]
    assert new["metrics"]["bias_first"] == json.loads(before)["metrics"]["bias_first"]


def test_killed_during_a_fork_resumes_to_the_same_fork(tmp_path, reference):
    cid = "office-product-launch.base.none.r0"
    fork = ["replay", str(reference), "--conversation", cid, "--from-turn", "4",
            "--model", MODEL, "--replicates", "4", "--json"]
    clean = tmp_path / "clean"
    assert main([*fork, "--out", str(clean)]) == 0
    out = tmp_path / "fork"
    marker = tmp_path / "forking"
    script = f"""
from agentsim.core import store as _store
_append, _seen = _store.RunStore.append, []
def _pause(self, event):
    result = _append(self, event)
    if event.type == "conversation_finished":
        _seen.append(1)
        if len(_seen) == 2:
            Path({str(marker)!r}).touch()
            time.sleep({PAUSE})
    return result
_store.RunStore.append = _pause
"""
    process = child(script, *fork, "--out", str(out))  # no cache: the parent ran without
    wait_for(marker.exists, process)
    kill(process)
    assert len(finished_ids(out)) == 2
    assert json.loads((out / "manifest.json").read_text())["parent"]["from_turn"] == 4
    assert main(["resume", str(out)]) == 0
    ids = finished_ids(out)
    assert len(ids) == len(set(ids)) == 4
    assert conversations(out) == conversations(clean)  # the same continuations, once each
    assert judge_counts(out) == judge_counts(clean)
    ours = json.loads((out / "results.json").read_text())["metrics"]
    theirs = json.loads((clean / "results.json").read_text())["metrics"]
    assert ours == theirs
