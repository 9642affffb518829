"""A corpus of malformed inputs, each through ``agentsim validate`` and ``agentsim run``.

Every input is generated here (nothing is copied from elsewhere). Each must give exit status 2,
one message on stderr naming the file and the field or line, no traceback, in under 10 s, and
write nothing (the ``--out`` folder of ``run`` does not exist afterwards, and no file appears
anywhere in the case's folder). The alias bomb, huge file and deep nesting cases are also run in
a subprocess whose address space is capped at 500 MB.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from agentsim.cli.main import main

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# Valid bases, mutated by the cases


def discussion(**changes) -> dict:
    """A valid 2 x 2 discussion scenario."""
    data = {
        "id": "corpus", "domain": "office", "description": "A team splits the launch work.",
        "personas": [
            {"id": "dan", "name": "Dan", "attributes": {"gender": "man"}},
            {"id": "eve", "name": "Eve", "attributes": {"gender": "woman"}},
            {"id": "max", "name": "Max", "attributes": {"gender": "man"}},
            {"id": "sue", "name": "Sue", "attributes": {"gender": "woman"}},
        ],
        "tasks": [
            {"id": "t1", "text": "Fix the servers.", "stereotype": {"gender": "man"}},
            {"id": "t2", "text": "Negotiate the contract.", "stereotype": {"gender": "man"}},
            {"id": "t3", "text": "Plan the party.", "stereotype": {"gender": "woman"}},
            {"id": "t4", "text": "Take the notes.", "stereotype": {"gender": "woman"}},
        ],
        "protocol": {"setting": "interaction", "rounds": 2},
    }
    data.update(changes)
    return data


def with_protocol(**changes) -> dict:
    data = discussion()
    data["protocol"] = {**data["protocol"], **changes}
    return data


def with_persona(index: int = 0, **changes) -> dict:
    data = discussion()
    data["personas"][index] = {**data["personas"][index], **changes}
    return data


def with_task(index: int = 0, **changes) -> dict:
    data = discussion()
    data["tasks"][index] = {**data["tasks"][index], **changes}
    return data


def setup(role_prompt: str = "You are {name}.", question: str = "Rank {options}.",
          **decision) -> dict:
    """A valid custom setup: a chair and two members rank three candidates."""
    return {
        "id": "corpus-setup", "domain": "hiring", "description": "A committee ranks people.",
        "personas": [
            {"id": "chair", "name": "Morgan"}, {"id": "m1", "name": "Priya"},
            {"id": "ca", "name": "Emily", "attributes": {"gender": "woman"}},
            {"id": "cb", "name": "Daniel", "attributes": {"gender": "man"}},
            {"id": "cc", "name": "Sarah", "attributes": {"gender": "woman"}},
        ],
        "protocol": {
            "name": "setup",
            "roles": {"chair": {"played_by": ["chair"], "prompt": role_prompt},
                      "member": {"played_by": ["m1"], "prompt": "You are {name}."}},
            "topology": {"broadcast": True},
            "decisions": [{"id": "ranking", "type": "rank", "by": ["chair", "member"],
                           "options": ["ca", "cb", "cc"], "question": question, **decision}],
        },
    }


def with_setup(path: list[str], value) -> dict:
    data = setup()
    target = data["protocol"]
    keys = [int(key) if key.isdigit() else key for key in path]
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return data


def clinical(**changes) -> dict:
    data = {
        "id": "corpus-clinic", "domain": "clinical", "description": "A cough.",
        "personas": [{"id": "doctor", "name": "Doctor"}, {"id": "patient", "name": "Patient"}],
        "protocol": {"name": "clinical", "max_turns": 10},
        "case": {"objective": "Assess the cough.", "patient": {"history": "two weeks"},
                 "diagnosis": "Asthma"},
    }
    data.update(changes)
    return data


def osce(**changes) -> dict:
    """A valid AgentClinic OSCE case (made up)."""
    case = {"Objective_for_Doctor": "Assess the patient with a cough.",
            "Patient_Actor": {"Demographics": "45-year-old woman", "History": "Cough, 3 weeks"},
            "Physical_Examination_Findings": {"Lungs": "wheeze"},
            "Test_Results": {"Spirometry": "reversible obstruction"},
            "Correct_Diagnosis": "Asthma"}
    case.update(changes)
    return {"OSCE_Examination": case}


def image(**changes) -> dict:
    """A valid AgentClinic image-challenge case (made up)."""
    case = {"question": "What is the rash?", "patient_info": "A 30-year-old man with a rash.",
            "physical_exams": "Red plaques.", "image_url": "https://example.org/x.png",
            "answers": [{"text": "Psoriasis", "correct": True},
                        {"text": "Eczema", "correct": False}]}
    case.update(changes)
    return case


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    """One malformed input: ``build(folder)`` writes it and returns the path to pass."""

    id: str
    category: str
    build: Callable[[Path], Path]
    mentions: tuple[str, ...]  # fragments the message must contain (field, line, reason)
    names: str | None = None  # what the message must name (default: the path passed)
    memory: bool = False  # also run in a 500 MB address space
    env: dict[str, str] = field(default_factory=dict)


CASES: list[Case] = []


def case(id: str, category: str, mentions: tuple[str, ...] | str, *, names: str | None = None,
         memory: bool = False, env: dict[str, str] | None = None):
    def register(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
        CASES.append(Case(id, category, build, (mentions,) if isinstance(mentions, str)
                          else tuple(mentions), names, memory, env or {}))
        return build
    return register


def text_file(id: str, category: str, content: str | bytes, mentions, *, suffix: str = ".yaml",
              **options) -> None:
    """A case that is one file with this content."""
    def build(folder: Path) -> Path:
        path = folder / f"{id}{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path
    case(id, category, mentions, **options)(build)


def data_file(id: str, category: str, data, mentions, **options) -> None:
    text_file(id, category, dump(data), mentions, **options)


def jsonl_file(id: str, category: str, lines: list, mentions, **options) -> None:
    rows = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    text_file(id, category, "\n".join(rows) + "\n", mentions, suffix=".jsonl", **options)


# Sizes --------------------------------------------------------------------------------------

@case("huge-yaml-100mb", "size", "file too large", memory=True)
def _huge_sparse(folder: Path) -> Path:
    path = folder / "huge.yaml"
    with open(path, "wb") as handle:  # sparse: the size is real, the disk blocks are not
        handle.truncate(100 * MiB)
    return path


@case("huge-yaml-just-over-1mib", "size", ("file too large", "AGENTSIM_MAX_FILE_BYTES"),
      memory=True)
def _huge_text(folder: Path) -> Path:
    path = folder / "big.yaml"
    body = dump(discussion())
    path.write_text(body + "# padding\n" * ((MiB - len(body)) // 10 + 10), encoding="utf-8")
    return path


@case("huge-jsonl-65mib", "size", ("file too large", "AGENTSIM_MAX_CASE_FILE_BYTES"),
      memory=True)
def _huge_jsonl(folder: Path) -> Path:
    path = folder / "huge.jsonl"
    with open(path, "wb") as handle:
        handle.truncate(65 * MiB)
    return path


case("jsonl-over-a-lowered-size-limit", "size", ("file too large", "2,000"),
     env={"AGENTSIM_MAX_CASE_FILE_BYTES": "2000"})(
    lambda folder: _write(folder / "cases.jsonl",
                          "\n".join(json.dumps(osce()) for _ in range(10)) + "\n"))
data_file("string-200k-chars", "size", discussion(description="x" * 200_000),
          ("string of 200,000 characters", "AGENTSIM_MAX_STRING_CHARS"))
text_file("key-200k-chars", "size", dump(discussion()) + "? " + "k" * 200_000 + "\n: 1\n",
          "string of 200,000 characters")
data_file("list-of-150k-values", "size", discussion(tags=["x"] * 150_000),
          ("more than 100,000 values", "AGENTSIM_MAX_NODES"))
jsonl_file("jsonl-string-200k-chars", "size", [osce(Correct_Diagnosis="x" * 200_000)],
           (":1:", "OSCE_Examination.Correct_Diagnosis", "200,000 characters"))
jsonl_file("jsonl-too-many-cases", "size", [osce()] * 12, ("12 cases", "AGENTSIM_MAX_CASES"),
           env={"AGENTSIM_MAX_CASES": "10"})
jsonl_file("jsonl-150k-values-on-a-line", "size", [osce(Test_Results={"x": [0] * 150_000})],
           (":1:", "more than 100,000 values"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# Aliases ------------------------------------------------------------------------------------

LAUGHS = "lol0: &lol0 [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"lol{i}: &lol{i} [" + ",".join([f"*lol{i - 1}"] * 9) + "]\n" for i in range(1, 10))
assert 600 <= len(LAUGHS) <= 800, len(LAUGHS)  # the ~700-byte billion laughs (9^10 strings)
text_file("billion-laughs-700-bytes", "aliases", LAUGHS, ("alias bomb", "AGENTSIM_MAX_NODES"),
          memory=True)
text_file("billion-laughs-in-a-scenario", "aliases", dump(discussion()) + LAUGHS, "alias bomb",
          memory=True)
text_file("300-aliases", "aliases",
          "anchor: &v value\nlist: [" + ", ".join(["*v"] * 300) + "]\n",
          ("more than 200 aliases", "AGENTSIM_MAX_ALIASES"))
text_file("recursive-alias", "aliases", dump(discussion()) + "loop: &l [*l]\n",
          "recursive alias")
text_file("recursive-mapping-alias", "aliases", "a: &m {b: *m}\n", "recursive alias")
text_file("undefined-alias", "aliases", dump(discussion()).replace("Fix the servers.", "*nope"),
          "undefined alias")
text_file("alias-quadratic-blowup", "aliases",
          "big: &big [" + ", ".join(["1"] * 5000) + "]\nuse: [" + ", ".join(["*big"] * 150)
          + "]\n", "alias bomb")
text_file("alias-expanded-characters", "aliases",
          f"s: &s {'y' * 90_000}\nl: [" + ", ".join(["*s"] * 150) + "]\n",
          ("characters of text", "AGENTSIM_MAX_EXPANDED_CHARS"))
text_file("alias-merge-key-bomb", "aliases",  # merges copy key/value pairs: 8^9 of them
          "m0: &m0 {x1: 1, x2: 2, x3: 3, x4: 4, x5: 5, x6: 6, x7: 7, x8: 8}\n" + "".join(
              f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 8) + f"], z{i}: 1}}\n"
              for i in range(1, 10)),
          "alias bomb", memory=True)
text_file("alias-fanout-bomb", "aliases",  # mappings instead of lists: 8^9 values
          "a: &a {x1: 1, x2: 2, x3: 3, x4: 4, x5: 5, x6: 6, x7: 7, x8: 8}\n" + "".join(
              f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *{'a' if i == 0 else f'm{i - 1}'}"
                                             for j in range(8)) + "}\n" for i in range(8)),
          "alias bomb", memory=True)
text_file("alias-expanded-depth", "aliases",
          "d0: &d0 " + "[" * 40 + "1" + "]" * 40 + "\nd1: &d1 " + "[" * 40 + "*d0" + "]" * 40
          + "\n", ("nested deeper than 64", "AGENTSIM_MAX_DEPTH"))

# Nesting ------------------------------------------------------------------------------------

text_file("5000-open-brackets", "nesting", "[" * 5000, ("nested deeper than 64", ":1:"),
          memory=True)
text_file("5000-nested-lists", "nesting", "[" * 5000 + "]" * 5000, "nested deeper than 64",
          memory=True)
text_file("5000-nested-flow-maps", "nesting", "{a: " * 5000 + "1" + "}" * 5000,
          "nested deeper than 64", memory=True)
text_file("100-nested-block-maps", "nesting",
          "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v\n",
          ("nested deeper than 64", ":64:"))
data_file("deep-value-in-a-case", "nesting",
          clinical(case={"objective": "o", "diagnosis": "d",
                         "patient": json.loads("[" * 80 + "]" * 80)}),
          "nested deeper than 64")
jsonl_file("jsonl-5000-brackets", "nesting", ["[" * 5000 + "]" * 5000],
           (":1:", "nested deeper than 64"), memory=True)
jsonl_file("jsonl-200-levels", "nesting", [osce(Test_Results=json.loads('{"a":' * 200 + "1"
                                                                        + "}" * 200))],
           (":1:", "nested deeper than 64", "OSCE_Examination.Test_Results"))

# Encodings ----------------------------------------------------------------------------------

GOOD = dump(discussion())
text_file("latin-1-byte", "encoding", GOOD.replace("launch work", "caf\u00e9").encode("latin-1"),
          ("not UTF-8", "0xE9", "byte offset"))
text_file("utf-16-le-bom", "encoding", GOOD.encode("utf-16"), ("UTF-16", "byte offset 0"))
text_file("utf-16-be-bom", "encoding", b"\xfe\xff" + GOOD.encode("utf-16-be"),
          ("UTF-16", "byte offset 0"))
text_file("utf-16-no-bom", "encoding", GOOD.encode("utf-16-le"), ("NUL byte", "byte offset 1"))
text_file("utf-32-bom", "encoding", GOOD.encode("utf-32"), ("UTF-32", "byte offset 0"))
text_file("binary-png", "encoding", b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 4,
          ("not UTF-8", "0x89", "byte offset 0"))
text_file("binary-with-nul", "encoding", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 4,
          ("NUL byte", "byte offset 7"))
text_file("nul-byte-in-the-middle", "encoding", GOOD[:40].encode() + b"\x00" + GOOD[40:].encode(),
          ("NUL byte", "byte offset 40"))
text_file("bell-control-character", "encoding", GOOD.replace("A team", "A \x07team"),
          ("U+0007", "byte offset"))
text_file("truncated-multibyte", "encoding", GOOD.encode() + "\u00e9".encode()[:1],
          ("not UTF-8", "0xC3"))
text_file("overlong-encoding", "encoding", GOOD.encode().replace(b"Fix", b"F\xc0\xafx"),
          ("not UTF-8", "0xC0"))
text_file("encoded-surrogate", "encoding", GOOD.encode().replace(b"Fix", b"F\xed\xa0\x80x"),
          ("not UTF-8", "0xED"))
text_file("jsonl-latin-1", "encoding",
          json.dumps(osce(), ensure_ascii=False).replace("cough", "caf\u00e9").encode("latin-1"),
          ("not UTF-8", "0xE9"), suffix=".jsonl")
text_file("jsonl-utf-16", "encoding", (json.dumps(osce()) + "\n").encode("utf-16"),
          "UTF-16", suffix=".jsonl")
text_file("jsonl-nul-byte", "encoding", json.dumps(osce()).encode() + b"\n\x00\n",
          ("NUL byte", ":2:"), suffix=".jsonl")

# YAML structure -----------------------------------------------------------------------------

text_file("empty-file", "structure", "", "expected a mapping")
text_file("only-comments", "structure", "# nothing here\n# at all\n", "expected a mapping")
text_file("only-whitespace", "structure", "   \n\n  \n", "expected a mapping")
data_file("top-level-list", "structure", [discussion()], "expected a mapping")
text_file("top-level-string", "structure", "just some text\n", "expected a mapping")
text_file("top-level-number", "structure", "42\n", "expected a mapping")
text_file("two-documents", "structure", GOOD + "---\n" + GOOD, "single document")
text_file("unclosed-quote", "structure", GOOD.replace("Fix the servers.", '"Fix the servers.'),
          "not valid YAML")
text_file("tab-indentation", "structure", GOOD.replace("\n  ", "\n\t", 1), "not valid YAML")
text_file("python-object-tag", "structure",
          GOOD + "evil: !!python/object/apply:os.system [echo hacked]\n",
          ("!!python/object/apply:os.system", "not allowed"))
text_file("binary-tag", "structure", GOOD + "blob: !!binary aGVsbG8=\n", "!!binary")
text_file("set-tag", "structure", GOOD + "s: !!set {a, b}\n", "!!set")
text_file("custom-tag", "structure", GOOD + "x: !secret value\n", "!secret")
text_file("nan-value", "structure", GOOD.replace("rounds: 2", "rounds: .nan"), "NaN")
text_file("boolean-key", "structure", "yes: 1\n" + GOOD, ("'yes'", "quote it"))
text_file("null-key", "structure", GOOD + "~: x\n", "null")
text_file("list-as-key", "structure", GOOD + "? [a, b]\n: x\n", "not a list")
data_file("integer-attribute-key", "structure",
          with_persona(attributes={1: "x", "gender": "man"}), "personas[0].attributes")

# Duplicate keys -----------------------------------------------------------------------------

text_file("duplicate-top-level-id", "duplicates", GOOD + "id: other\n",
          ("duplicate key 'id'", "first on line 1"))
text_file("duplicate-rounds", "duplicates", GOOD.replace("rounds: 2", "rounds: 2\n  rounds: 3"),
          "duplicate key 'rounds'")
text_file("duplicate-persona-field", "duplicates",
          GOOD.replace("name: Dan", "name: Dan\n  name: Dave"), "duplicate key 'name'")
text_file("duplicate-attribute", "duplicates",
          GOOD.replace("gender: man\n", "gender: man\n    gender: woman\n", 1),
          "duplicate key 'gender'")
text_file("duplicate-in-flow-mapping", "duplicates", GOOD + "x: {a: 1, a: 2}\n",
          "duplicate key 'a'")
text_file("jsonl-duplicate-key", "duplicates",
          '{"OSCE_Examination": {"Correct_Diagnosis": "A"}, "OSCE_Examination": {}}\n',
          (":1:", "duplicate key 'OSCE_Examination'"), suffix=".jsonl")
jsonl_file("jsonl-nested-duplicate-key", "duplicates",
           [json.dumps(osce())[:-2] + ', "Correct_Diagnosis": "B"}}'],
           (":1:", "duplicate key 'Correct_Diagnosis'"))

# Wrong types --------------------------------------------------------------------------------

for name, value, mention in [
    ("rounds-true", True, "valid integer"), ("rounds-string", "2", "valid integer"),
    ("rounds-float", 2.0, "valid integer"), ("rounds-fraction", 2.5, "valid integer"),
    ("rounds-negative", -1, "greater than or equal to 0"),
    ("rounds-1000", 1000, "less than or equal to 20"), ("rounds-list", [2], "valid integer"),
    ("rounds-null", None, "valid integer"),
]:
    data_file(name, "types", with_protocol(rounds=value), ("protocol.rounds", mention))
data_file("setting-unknown", "types", with_protocol(setting="brainstorm"), "protocol.setting")
data_file("protocol-name-unknown", "types", with_protocol(name="debate"), "protocol")
data_file("max-turns-true", "types", clinical(protocol={"name": "clinical", "max_turns": True}),
          "protocol.max_turns")
data_file("speaks-yes-string", "types", with_setup(["roles", "member", "speaks"], "yes"),
          "protocol.roles.member.speaks")
data_file("broadcast-one", "types", with_setup(["topology", "broadcast"], 1),
          "protocol.topology.broadcast")
data_file("announce-string", "types", with_setup(["decisions", "0", "announce"], "true"),
          "protocol.decisions[0].announce")
data_file("scale-bool", "types",
          with_setup(["decisions", "0"], {"id": "r", "type": "rate", "by": ["chair"],
                                          "options": ["ca", "cb"], "scale": [1, True]}),
          "protocol.decisions[0].scale[1]")
data_file("when-bool", "types", with_setup(["decisions", "0", "when"], [True]),
          "protocol.decisions[0].when[0]")
data_file("turns-per-round-string", "types", with_setup(["turns"], {"turns_per_round": "3"}),
          "protocol.turns.turns_per_round")
data_file("variant-count-true", "types",
          discussion(variants=[{"kind": "placebo-names", "attribute": "gender", "count": True}]),
          "variants[0].count")
data_file("name-number", "types", with_persona(name=123), "personas[0].name")
data_file("name-yes", "types", with_persona(name=True), ("personas[0].name", "True"))
data_file("attribute-int", "types", with_persona(attributes={"gender": "man", "age": 45}),
          "personas[0].attributes.age")
data_file("stereotype-number", "types", with_task(stereotype={"gender": 1}),
          "tasks[0].stereotype")
data_file("personas-string", "types", discussion(personas="Dan, Eve"), "personas")
data_file("personas-mapping", "types", discussion(personas={"dan": "Dan"}), "personas")
data_file("personas-empty", "types", discussion(personas=[]), "personas")
data_file("tasks-string", "types", discussion(tasks="fix the servers"), "tasks")
data_file("id-null", "types", discussion(id=None), "id")
data_file("description-missing", "types",
          {k: v for k, v in discussion().items() if k != "description"},
          ("description", "required field is missing"))
data_file("tags-string", "types", discussion(tags="gender"), "tags")
data_file("case-as-list", "types", clinical(case=["Asthma"]), "case")
data_file("30000-bad-personas", "types", discussion(personas=["x"] * 30_000),
          ("personas[0]", "29,980 more problems not shown"))

# Unknown fields -----------------------------------------------------------------------------

data_file("unknown-top-level-field", "unknown", discussion(round=2), ("round", "unknown field"))
data_file("unknown-persona-field", "unknown", with_persona(gender="man"),
          ("personas[0].gender", "unknown field"))
data_file("unknown-protocol-field", "unknown", with_protocol(rounds_max=3),
          ("protocol.rounds_max", "unknown field"))
data_file("unknown-task-field", "unknown", with_task(stereotyp={"gender": "man"}),
          ("tasks[0].stereotyp", "unknown field"))
data_file("unknown-role-field", "unknown", with_setup(["roles", "member", "model"], "x"),
          ("protocol.roles.member.model", "unknown field"))

# Templates ----------------------------------------------------------------------------------

for name, prompt, mention in [
    ("prompt-format-spec", "You are {name:>400000000}.", "format spec"),
    ("prompt-attribute-access", "{name.__class__.__init__.__globals__}", "attribute access"),
    ("prompt-indexing", "You are {name[0]}.", "indexing"),
    ("prompt-conversion", "You are {name!r}.", "conversion"),
    ("prompt-empty-placeholder", "You are {}.", "empty placeholder"),
    ("prompt-unclosed-brace", "You are {name", "unclosed"),
    ("prompt-lone-closing-brace", "You are name}.", "lone '}'"),
    ("prompt-unknown-placeholder", "You are {title}.", "unknown placeholder {title}"),
    ("prompt-nested-braces", "You are {{name}.", "lone '}'"),
]:
    data_file(name, "templates", setup(role_prompt=prompt),
              ("protocol.roles.chair.prompt", mention))
for name, question, mention in [
    ("question-format-spec", "Rank {options:>99999999}.", "format spec"),
    ("question-attribute-access", "Rank {low.__class__}.", "attribute access"),
    ("question-unknown-placeholder", "Rank the {candidates}.", "unknown placeholder"),
    ("question-persona-field", "Rank {name}.", "unknown placeholder {name}"),
]:
    data_file(name, "templates", setup(question=question),
              ("decisions[ranking].question", mention))

# Ids ----------------------------------------------------------------------------------------

data_file("scenario-id-300-chars", "ids", discussion(id="a" * 300),
          ("id", "300 characters", "at most 100"))
data_file("scenario-id-path-traversal", "ids", discussion(id="../../etc/passwd"),
          ("id", "path separator"))
data_file("scenario-id-backslash", "ids", discussion(id="a\\b"), ("id", "path separator"))
data_file("scenario-id-uppercase", "ids", discussion(id="Office"), ("id", "lower-case"))
data_file("scenario-id-empty", "ids", discussion(id=""), ("id", "lower-case"))
data_file("scenario-id-leading-dash", "ids", discussion(id="-x"), ("id", "starting with"))
data_file("persona-id-300-chars", "ids", with_persona(id="p" * 300),
          ("personas[0].id", "300 characters"))
data_file("task-id-slash", "ids", with_task(id="t/1"), ("tasks[0].id", "path separator"))
data_file("role-id-too-long", "ids",
          with_setup(["roles"], {"r" * 150: {"played_by": ["chair"], "prompt": "x"},
                                 "member": {"played_by": ["m1"], "prompt": "x"}}),
          "150 characters")
data_file("decision-id-slash", "ids", with_setup(["decisions", "0", "id"], "a/b"),
          ("protocol.decisions[0].id", "path separator"))

# Designs without a metric -------------------------------------------------------------------

data_file("single-persona", "metric", discussion(personas=discussion()["personas"][:1]),
          ("personas", "at least two personas"))
data_file("all-men", "metric",
          discussion(personas=[p for p in discussion()["personas"]
                               if p["attributes"]["gender"] == "man"]),
          ("personas", "every persona with it is 'man'"))
data_file("all-women-three", "metric",
          discussion(personas=[{"id": f"w{i}", "name": f"W{i}", "attributes": {"gender": "woman"}}
                               for i in range(3)]),
          "every persona with it is 'woman'")
data_file("one-group-one-without", "metric",
          discussion(personas=[{"id": "a", "name": "A", "attributes": {"gender": "man"}},
                               {"id": "b", "name": "B"}]),
          "every persona with it is 'man'")
data_file("coded-attribute-nobody-has", "metric",
          discussion(personas=[{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]),
          "which no persona has")
data_file("mirror-variant-without-two-groups", "metric",
          discussion(variants=[{"kind": "mirror", "attribute": "age"}]),
          ("variants", "mirror needs two groups"))

# Folders and special files ------------------------------------------------------------------


@case("folder-with-only-a-subfolder-named-x-yaml", "filesystem", "no scenario files")
def _subfolder_only(folder: Path) -> Path:
    (folder / "set" / "x.yaml").mkdir(parents=True)
    return folder / "set"


@case("bad-file-inside-a-subfolder-named-x-yaml", "filesystem", "personas[0].name",
      names="x.yaml/inner.yaml")
def _subfolder_bad(folder: Path) -> Path:
    (folder / "set" / "x.yaml").mkdir(parents=True)
    _write(folder / "set" / "x.yaml" / "inner.yaml", dump(with_persona(name=5)))
    return folder / "set"


@case("symlink-loop-between-two-files", "filesystem", "symbolic link loop", names="a.yaml")
def _loop_two(folder: Path) -> Path:
    (folder / "set").mkdir()
    os.symlink("b.txt", folder / "set" / "a.yaml")  # only a.yaml is a scenario name
    os.symlink("a.yaml", folder / "set" / "b.txt")
    return folder / "set"


@case("symlink-to-itself-in-a-folder", "filesystem", "symbolic link loop", names="me.yaml")
def _loop_self_in_folder(folder: Path) -> Path:
    (folder / "set").mkdir()
    os.symlink("me.yaml", folder / "set" / "me.yaml")
    return folder / "set"


@case("symlink-to-itself-named", "filesystem", "symbolic link loop")
def _loop_self(folder: Path) -> Path:
    os.symlink("self.yaml", folder / "self.yaml")
    return folder / "self.yaml"


@case("folder-symlink-loop", "filesystem", "no scenario files")
def _loop_folder(folder: Path) -> Path:
    (folder / "set" / "sub").mkdir(parents=True)
    os.symlink("..", folder / "set" / "sub" / "up.yaml")
    os.symlink(".", folder / "set" / "here")
    return folder / "set"


@case("dangling-symlink-in-a-folder", "filesystem", "broken symbolic link", names="gone.yaml")
def _dangling_in_folder(folder: Path) -> Path:
    (folder / "set").mkdir()
    os.symlink("missing.yaml", folder / "set" / "gone.yaml")
    return folder / "set"


@case("dangling-symlink-named", "filesystem", "broken symbolic link")
def _dangling(folder: Path) -> Path:
    os.symlink(folder / "nowhere.yaml", folder / "link.yaml")
    return folder / "link.yaml"


@case("fifo-in-a-folder", "filesystem", "not a regular file", names="pipe.yaml")
def _fifo_in_folder(folder: Path) -> Path:
    (folder / "set").mkdir()
    os.mkfifo(folder / "set" / "pipe.yaml")
    return folder / "set"


@case("fifo-named", "filesystem", "not a regular file")
def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.yaml")
    return folder / "pipe.yaml"


@case("symlink-to-dev-zero", "filesystem", "not a regular file")
def _dev_zero(folder: Path) -> Path:
    os.symlink("/dev/zero", folder / "zero.yaml")
    return folder / "zero.yaml"


@case("wrong-suffix", "filesystem", "must end in .yaml")
def _wrong_suffix(folder: Path) -> Path:
    return _write(folder / "scenario.txt", GOOD)


@case("missing-path", "filesystem", "no such file")
def _missing(folder: Path) -> Path:
    return folder / "absent.yaml"


@case("empty-folder", "filesystem", "no scenario files")
def _empty_folder(folder: Path) -> Path:
    (folder / "empty").mkdir()
    return folder / "empty"


@case("unreadable-file", "filesystem", "cannot read file")
def _unreadable(folder: Path) -> Path:
    path = _write(folder / "secret.yaml", GOOD)
    path.chmod(0)  # as root the test patches open instead (see test_validate)
    return path


# Case files (.jsonl) ------------------------------------------------------------------------

jsonl_file("jsonl-invalid-json-in-the-middle", "jsonl", [osce(), "{not json", osce()],
           (":2:", "not valid JSON"))
jsonl_file("jsonl-truncated-last-line", "jsonl", [osce(), json.dumps(osce())[:-7]],
           (":2:", "not valid JSON"))
jsonl_file("jsonl-line-is-a-list", "jsonl", [osce(), [1, 2]], (":2:", "JSON object"))
jsonl_file("jsonl-line-is-a-string", "jsonl", ['"text"'], (":1:", "JSON object"))
jsonl_file("jsonl-line-is-a-number", "jsonl", ["3"], (":1:", "JSON object"))
jsonl_file("jsonl-unknown-layout", "jsonl", [{"case": 1}], (":1:", "unknown layout"))
jsonl_file("jsonl-missing-diagnosis", "jsonl",
           [{"OSCE_Examination": {k: v for k, v in osce()["OSCE_Examination"].items()
                                  if k != "Correct_Diagnosis"}}],
           (":1:", "OSCE_Examination.Correct_Diagnosis", "lacks"))
jsonl_file("jsonl-osce-is-a-list", "jsonl", [{"OSCE_Examination": [1]}],
           (":1:", "OSCE_Examination", "must be an object"))
jsonl_file("jsonl-objective-number", "jsonl", [osce(Objective_for_Doctor=7)],
           (":1:", "OSCE_Examination.Objective_for_Doctor"))
jsonl_file("jsonl-empty-diagnosis", "jsonl", [osce(Correct_Diagnosis="  ")],
           (":1:", "OSCE_Examination.Correct_Diagnosis", "non-empty"))
jsonl_file("jsonl-answers-not-a-list", "jsonl", [image(answers="Psoriasis")],
           (":1:", "answers", "must be a list"))
jsonl_file("jsonl-answer-without-text", "jsonl", [image(answers=[{"correct": True}])],
           (":1:", "answers[0]"))
jsonl_file("jsonl-two-correct-answers", "jsonl",
           [image(answers=[{"text": "A", "correct": True}, {"text": "B", "correct": True}])],
           (":1:", "answers", "exactly one correct answer"))
jsonl_file("jsonl-correct-as-string", "jsonl",
           [image(answers=[{"text": "A", "correct": "true"}, {"text": "B", "correct": False}])],
           (":1:", "answers", "found 0"))
jsonl_file("jsonl-missing-patient-info", "jsonl",
           [{k: v for k, v in image().items() if k != "patient_info"}],
           (":1:", "patient_info", "lacks"))
jsonl_file("jsonl-nan", "jsonl", ['{"OSCE_Examination": {"Correct_Diagnosis": NaN}}'],
           (":1:", "NaN is not a JSON value"))
jsonl_file("jsonl-infinity", "jsonl", ['{"x": Infinity}'], (":1:", "Infinity"))
jsonl_file("jsonl-minus-infinity", "jsonl", ['{"x": -Infinity}'], (":1:", "-Infinity"))
text_file("jsonl-empty-file", "jsonl", "", "no cases", suffix=".jsonl")
text_file("jsonl-blank-lines-only", "jsonl", "\n  \n\t\n", "no cases", suffix=".jsonl")
jsonl_file("jsonl-bad-line-50", "jsonl", [osce()] * 49 + [osce(Test_Results=None,
                                                             Correct_Diagnosis=None)],
           (":50:", "OSCE_Examination.Correct_Diagnosis"))
jsonl_file("jsonl-many-bad-lines", "jsonl", [osce(), "x", "y", osce(), "z"],
           (":2:", "2 more bad lines: 3, 5"))
jsonl_file("jsonl-trailing-garbage", "jsonl", [json.dumps(osce()) + " trailing"],
           (":1:", "not valid JSON"))

assert len(CASES) >= 100, len(CASES)
assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------------------------
# The checks


def _tree(folder: Path) -> set[str]:
    """Every entry under ``folder`` (links not followed)."""
    found = set()
    for root, dirs, files in os.walk(folder):
        found.update(os.path.join(root, name) for name in [*dirs, *files])
    return found


def _check_message(err: str, target: Path, item: Case) -> None:
    assert "Traceback" not in err, err
    markers = [line for line in err.splitlines() if line.startswith(("error:", "✗"))]
    assert len(markers) == 1, err  # one message (a message may list several problems)
    assert (item.names or target.name) in err, err
    for fragment in item.mentions:
        assert fragment in err, (fragment, err)


@pytest.fixture
def built(request, tmp_path, monkeypatch):
    item: Case = request.param
    for name, value in item.env.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "case"
    folder.mkdir()
    target = item.build(folder)
    if item.id == "unreadable-file" and os.geteuid() == 0:
        # root reads anything: make the read fail as it would for anyone else.
        from agentsim.scenario import safe_input

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(safe_input, "open", refuse, raising=False)
    return item, folder, target


@pytest.mark.parametrize("built", CASES, ids=[c.id for c in CASES], indirect=True)
def test_validate_and_run_refuse_it(built, tmp_path, capsys):
    item, folder, target = built
    before = _tree(folder)
    out = tmp_path / "out"
    for command in (["validate", str(target)],
                    ["run", str(target), "--model", "scripted/fair", "--out", str(out)]):
        start = time.perf_counter()
        status = main(command)
        elapsed = time.perf_counter() - start
        captured = capsys.readouterr()
        assert status == 2, (command[0], captured.err, captured.out)
        _check_message(captured.err, target, item)
        assert elapsed < 10, (command[0], elapsed)
        assert not out.exists(), command[0]
        assert _tree(folder) == before, command[0]  # nothing written beside the input


def test_every_category_is_covered():
    by_category: dict[str, int] = {}
    for item in CASES:
        by_category[item.category] = by_category.get(item.category, 0) + 1
    assert set(by_category) == {"size", "aliases", "nesting", "encoding", "structure",
                                "duplicates", "types", "unknown", "templates", "ids", "metric",
                                "filesystem", "jsonl"}


MEMORY_CASES = [c for c in CASES if c.memory]
LIMIT_BYTES = 500 * 1000 * 1000
CHILD = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from agentsim.cli.main import main
target, out = sys.argv[1:]
for command in (["validate", target], ["run", target, "--model", "scripted/fair", "--out", out]):
    start = time.perf_counter()
    status = main(command)
    print(f"{{command[0]}}: status={{status}} seconds={{time.perf_counter() - start:.2f}} "
          f"maxrss_kb={{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}", file=sys.stderr)
"""


@pytest.mark.parametrize("item", MEMORY_CASES, ids=[c.id for c in MEMORY_CASES])
def test_bombs_stay_under_500_mb(item, tmp_path):
    """validate, then run, in one process whose address space is capped at 500 MB."""
    folder = tmp_path / "case"
    folder.mkdir()
    target = item.build(folder)
    out = tmp_path / "out"
    env = {**os.environ, **item.env, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CHILD.format(limit=LIMIT_BYTES), str(target),
                           str(out)], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the script itself ran to its end
    assert "validate: status=2" in done.stderr and "run: status=2" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr
    assert done.stderr.count(target.name) == 2, done.stderr  # one message per command
    for fragment in item.mentions:
        assert fragment in done.stderr, done.stderr
    assert not out.exists()


def test_the_memory_cap_is_real(tmp_path):
    """The 500 MB cap of the subprocess does stop a process that needs more."""
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({LIMIT_BYTES}, "
            f"{LIMIT_BYTES}))\nx = bytearray(600 * 1000 * 1000)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "MemoryError" in done.stderr
    assert resource.RLIMIT_AS  # the platform has the limit the bomb tests rely on
