"""Property-based tests: random mutations of valid files never crash the loaders.

Whatever the bytes, the scenario loader, the AgentClinic case importer and the transcript
importer either return their result or raise agentsim's :class:`InputError` (subclasses
included) — never another exception. Mutations: byte flips, deleted, duplicated and swapped
lines, swapped values, truncation, random YAML/JSON spliced in, and structural changes to parsed
records (keys dropped, values replaced by random values of any type). Each property is bounded
(``max_examples``) so the set runs in seconds.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsim.errors import InputError
from agentsim.runs.transcripts import import_transcript
from agentsim.scenario.agentclinic import load_agentclinic
from agentsim.scenario.loader import load_scenario, scenario_hash, scenario_to_data
from agentsim.scenario.variants import declared_variants

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for folder in ("workplace", "clinical", "setups")
                 for p in (REPO / "scenarios" / folder).glob("*.yaml")
                 if p.name != "biases.yaml")
MEDQA = REPO.parent / "shared" / "anchors" / "agentclinic" / "agentclinic_medqa.jsonl"

# 200 fixed examples each (derandomized: the same every run); AGENTSIM_PROPERTY_EXAMPLES=N
# explores N fresh random examples instead.
EXPLORE = int(os.environ.get("AGENTSIM_PROPERTY_EXAMPLES", "0"))
PROPERTY = settings(max_examples=EXPLORE or 200, deadline=None, derandomize=not EXPLORE,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# Any JSON/YAML value: what a mutation may put where a value was.
SCALARS = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
           | st.sampled_from(["yes", "no", "~", "true", "2", "1e3", "{name:>9}", "{x.y}",
                              "*alias", "&anchor", "- item", "a: b", "", " ", "\t", "%",
                              "../../x", "x" * 150, "{{", "}}", "!!python/none"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="agentsim-properties-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


_counter = itertools.count()


def _fresh(scratch: Path, suffix: str) -> Path:
    return scratch / f"f{next(_counter)}{suffix}"


# --------------------------------------------------------------------------------------------
# Mutations of text


@st.composite
def mutated_bytes(draw, original: bytes) -> bytes:
    """``original`` after one to four random edits."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete-bytes", "truncate", "lines",
                                     "splice", "swap-values"]))
        if kind == "flip" and data:
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=12)
                               | st.sampled_from([b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\t",
                                                  b"{", b"}", b"[", b"&a ", b"*a", b"\n---\n",
                                                  b": ", b"- ", b"\"", b"'", b"\\u0000",
                                                  b"\xe9", b"<<: *a\n"]))
        elif kind == "delete-bytes" and data:
            at = draw(st.integers(0, len(data) - 1))
            del data[at: at + draw(st.integers(1, 40))]
        elif kind == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)):]
        elif kind == "lines":
            lines = bytes(data).split(b"\n")
            op = draw(st.sampled_from(["delete", "duplicate", "swap", "move"]))
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "delete":
                del lines[i]
            elif op == "duplicate":
                lines.insert(j, lines[i])
            elif op == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines.pop(i))
            data = bytearray(b"\n".join(lines))
        elif kind == "splice":
            snippet = yaml.safe_dump(draw(VALUES), default_flow_style=draw(st.booleans()))
            lines = bytes(data).split(b"\n")
            at = draw(st.integers(0, len(lines)))
            indent = b" " * draw(st.integers(0, 6))
            lines[at:at] = [indent + line for line in snippet.encode().split(b"\n")]
            data = bytearray(b"\n".join(lines))
        elif kind == "swap-values":
            lines = bytes(data).split(b"\n")
            keyed = [n for n, line in enumerate(lines) if b": " in line]
            if len(keyed) >= 2:
                a, b = draw(st.sampled_from(keyed)), draw(st.sampled_from(keyed))
                ka, _, va = lines[a].partition(b": ")
                kb, _, vb = lines[b].partition(b": ")
                lines[a], lines[b] = ka + b": " + vb, kb + b": " + va
                data = bytearray(b"\n".join(lines))
    return bytes(data)


@st.composite
def mutated_record(draw, record):
    """A parsed JSON/YAML value with one to three structural changes."""
    record = json.loads(json.dumps(record))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(record))
        if not paths:
            return draw(VALUES)
        path = draw(st.sampled_from(paths))
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = draw(st.sampled_from(["replace", "delete", "add", "wrap"]))
        if op == "replace":
            parent[key] = draw(VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"x": parent[key]}
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(VALUES)
        else:
            parent.insert(key, draw(VALUES))
    return record


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from _paths(child, (*prefix, index))


# --------------------------------------------------------------------------------------------
# The scenario loader


def _load_fully(path: Path) -> None:
    """What validate and run do with a scenario file (only InputError may escape)."""
    try:
        scenario = load_scenario(path)
    except InputError:
        return
    # A file that loads must also be usable: hashed, written back, its variants expanded.
    scenario_hash(scenario)
    scenario_to_data(scenario)
    declared_variants(scenario)


@st.composite
def mutated_scenario(draw) -> bytes:
    original = draw(st.sampled_from(SHIPPED)).read_bytes()
    if draw(st.integers(0, 4)) == 0:  # structural: parse, change, dump
        data = yaml.safe_load(original)
        return yaml.safe_dump(draw(mutated_record(data)), sort_keys=False).encode()
    return draw(mutated_bytes(original))


def test_the_shipped_files_are_there():
    assert len(SHIPPED) >= 25


@PROPERTY
@given(content=mutated_scenario())
def test_scenario_loader_raises_only_input_errors(scratch, content):
    path = _fresh(scratch, ".yaml")
    path.write_bytes(content)
    _load_fully(path)


@PROPERTY
@given(value=VALUES, flow=st.booleans())
def test_random_yaml_raises_only_input_errors(scratch, value, flow):
    path = _fresh(scratch, ".yml")
    path.write_text(yaml.safe_dump(value, default_flow_style=flow), encoding="utf-8")
    _load_fully(path)


# --------------------------------------------------------------------------------------------
# The AgentClinic case importer (lines of the published file, read from where it lies)


@pytest.fixture(scope="module")
def medqa_lines() -> list[str]:
    if not MEDQA.exists():
        pytest.skip(f"published AgentClinic data not found at {MEDQA}")
    return [line for line in MEDQA.read_text(encoding="utf-8").split("\n") if line.strip()]


@PROPERTY
@given(data=st.data())
def test_case_importer_raises_only_input_errors(scratch, medqa_lines, data):
    picks = data.draw(st.lists(st.integers(0, len(medqa_lines) - 1), min_size=1, max_size=3))
    lines = [medqa_lines[i] for i in picks]
    target = data.draw(st.integers(0, len(lines) - 1))
    if data.draw(st.booleans()):
        lines[target] = json.dumps(data.draw(mutated_record(json.loads(lines[target]))))
        content = "\n".join(lines).encode()
    else:
        content = data.draw(mutated_bytes("\n".join(lines).encode()))
    path = _fresh(scratch, ".jsonl")
    path.write_bytes(content)
    try:
        scenarios, skipped = load_agentclinic(path)
    except InputError:
        return
    assert skipped == []
    for scenario in scenarios:
        scenario_hash(scenario)


# --------------------------------------------------------------------------------------------
# The transcript importer


TRANSCRIPT = [
    {"conversation_id": "c1", "turn": 0, "speaker": "Ann Lee", "role": "agent",
     "content": "I can lead the budget review.", "attributes": {"gender": "woman"},
     "decision": {"t1": "Ann Lee", "t2": "Bob"}, "phase": "first", "round": 0},
    {"conversation_id": "c1", "turn": 1, "speaker": "Bob", "role": "agent",
     "content": "I would rather do the slides.", "attributes": {"gender": "man"}, "round": 1},
    {"conversation_id": "c1", "turn": 2, "speaker": "Ann Lee", "role": "agent",
     "content": "Final: Bob takes the budget.", "decision": {"t1": "bob", "t2": "Ann Lee"}},
    {"conversation_id": "c2", "turn": 0, "speaker": "Moderator", "role": "moderator",
     "content": "Welcome, please decide."},
    {"conversation_id": "c2", "turn": 1, "speaker": "Cleo", "role": "agent",
     "content": "Dan should cook.", "attributes": {"gender": "woman"},
     "decision": {"cook": "Dan"}, "round": 1},
    {"conversation_id": "c2", "turn": 2, "speaker": "Dan", "role": "agent",
     "content": "Fine by me.", "attributes": {"gender": "man"}},
]


@PROPERTY
@given(data=st.data())
def test_transcript_importer_raises_only_input_errors(scratch, data):
    rows = [json.dumps(row) for row in TRANSCRIPT]
    if data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(rows) - 1))
        rows[index] = json.dumps(data.draw(mutated_record(TRANSCRIPT[index])))
        content = "\n".join(rows).encode()
    else:
        content = data.draw(mutated_bytes("\n".join(rows).encode()))
    path = _fresh(scratch, ".jsonl")
    path.write_bytes(content)
    out = _fresh(scratch, "-run")
    try:
        import_transcript(path, out, judge=False)
    except InputError:
        assert not out.exists()  # every line is checked before the folder is made
    finally:
        shutil.rmtree(out, ignore_errors=True)
