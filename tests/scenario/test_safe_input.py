"""What the bounded loader accepts, how its limits are raised, and inert prompt templates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsim.cli.main import main
from agentsim.errors import InputError
from agentsim.orchestrator.setup_decisions import question
from agentsim.scenario.agentclinic import load_agentclinic
from agentsim.scenario.loader import iter_scenario_files, load_scenario, load_scenarios
from agentsim.scenario.loader import parse_scenario
from agentsim.scenario.safe_input import (
    BoundedLoader,
    LimitExceeded,
    Limits,
    PythonBoundedLoader,
    parse_yaml,
)
from agentsim.scenario.schema import render_role_prompt
from agentsim.scenario.templates import TemplateError, fill, placeholders

# The corpus module's builders (tests/scenario is on sys.path: pytest's rootdir-relative import).
from test_malformed_corpus import LAUGHS, discussion, dump, osce, setup

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "scenarios" / name for name in ("workplace", "clinical", "setups")]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_scenario_is_valid(capsys):
    assert main(["validate", *map(str, SHIPPED)]) == 0
    assert "29 valid, 0 invalid" in capsys.readouterr().out


# Encodings and YAML ------------------------------------------------------------------------

def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path / "bom.yaml", b"\xef\xbb\xbf" + dump(discussion()).encode())
    assert load_scenario(path).id == "corpus"
    assert main(["validate", str(path)]) == 0
    cases = write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + json.dumps(osce()).encode() + b"\n")
    scenarios, skipped = load_agentclinic(cases)
    assert len(scenarios) == 1 and skipped == []


def test_non_ascii_utf8_is_kept(tmp_path):
    path = write(tmp_path / "x.yaml", dump(discussion(description="Caf\u00e9 \u2014 \u65e5\u672c")))
    assert load_scenario(path).description == "Caf\u00e9 \u2014 \u65e5\u672c"


@pytest.mark.parametrize("loader", [BoundedLoader, PythonBoundedLoader],
                         ids=["libyaml", "python"])
def test_both_parsers_refuse_the_same(loader):
    ok = "a: [1, {b: c}]\nd: &x {e: 1}\nf: {<<: *x, g: 2}\nwhen: 2024-01-01\n"
    assert parse_yaml(ok, "s", loader_class=loader) == {
        "a": [1, {"b": "c"}], "d": {"e": 1}, "f": {"e": 1, "g": 2}, "when": "2024-01-01"}
    for text, message in [(LAUGHS, "alias bomb"), ("[" * 5000, "nested deeper"),
                          ("a: 1\na: 2\n", r"duplicate key .a. \(first on line 1\)"),
                          ("x: &a [*a]\n", "recursive alias"), ("a: !!binary eA==\n", "!!binary"),
                          ("on: 1\n", "quote it"), ("a: .inf\n", "infinity")]:
        with pytest.raises(InputError, match=message):
            parse_yaml(text, "s", loader_class=loader)


def test_merge_keys_and_a_few_aliases_still_work(tmp_path):
    text = dump(discussion()).replace("personas:\n", "shared: &g {gender: man}\npersonas:\n", 1)
    text = text.replace("  attributes:\n    gender: man\n", "  attributes: *g\n", 1)
    path = write(tmp_path / "aliases.yaml", text)
    with pytest.raises(InputError, match="shared: unknown field"):
        load_scenario(path)  # the anchor's holder is an unknown field, but aliases are parsed


# Limits and how to raise them ---------------------------------------------------------------

def test_limits_are_raised_by_environment_variables(tmp_path, monkeypatch):
    text = dump(discussion(tags=["x"] * 300))
    path = write(tmp_path / "x.yaml", text)
    monkeypatch.setenv("AGENTSIM_MAX_NODES", "100")
    with pytest.raises(LimitExceeded, match="AGENTSIM_MAX_NODES") as error:
        load_scenario(path)
    assert error.value.limit == "nodes"
    monkeypatch.setenv("AGENTSIM_MAX_NODES", "100000")
    assert len(load_scenario(path).tags) == 300
    monkeypatch.setenv("AGENTSIM_MAX_FILE_BYTES", "100")
    with pytest.raises(LimitExceeded, match="file too large"):
        load_scenario(path)
    monkeypatch.delenv("AGENTSIM_MAX_FILE_BYTES")
    monkeypatch.setenv("AGENTSIM_MAX_STRING_CHARS", "5")
    with pytest.raises(LimitExceeded, match="AGENTSIM_MAX_STRING_CHARS"):
        load_scenario(path)


def test_limits_are_raised_by_keyword(tmp_path):
    nested = "[" * 100 + "]" * 100
    path = write(tmp_path / "deep.yaml", dump(discussion())
                 + f"extra: {nested}\n")
    with pytest.raises(LimitExceeded, match="nested deeper than 64"):
        load_scenario(path)
    with pytest.raises(InputError, match="extra: unknown field"):  # parsed, then validated
        load_scenario(path, limits=Limits.from_env(depth=200))
    many = write(tmp_path / "aliases.yaml", "a: &v 1\nb: [" + ", ".join(["*v"] * 250) + "]\n")
    with pytest.raises(LimitExceeded, match="more than 200 aliases"):
        load_scenario(many)
    with pytest.raises(InputError, match="expected a mapping|unknown field"):
        load_scenario(many, limits=Limits(aliases=300))


@pytest.mark.parametrize("value", ["lots", "0", "-3", "1.5"])
def test_a_bad_limit_variable_is_an_input_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("AGENTSIM_MAX_DEPTH", value)
    with pytest.raises(InputError) as error:
        load_scenario(write(tmp_path / "x.yaml", dump(discussion())))
    assert error.value.source == "AGENTSIM_MAX_DEPTH"


# Strict types, ids, designs -----------------------------------------------------------------

def test_uneven_designs_stay_valid(tmp_path):
    people = [{"id": "m", "name": "M", "attributes": {"gender": "man"}}] + [
        {"id": f"w{i}", "name": f"W{i}", "attributes": {"gender": "woman"}} for i in range(3)]
    assert len(load_scenario(write(tmp_path / "u.yaml", dump(discussion(personas=people))))
               .personas) == 4
    # Two personas of different groups, and rounds 0, are fine too.
    pair = discussion(personas=people[:2], protocol={"rounds": 0})
    assert load_scenario(write(tmp_path / "p.yaml", dump(pair))).protocol.rounds == 0


def test_the_metric_check_is_for_files_not_for_stored_runs():
    # A run's manifest (an imported one-speaker transcript, say) still parses.
    alone = discussion(personas=discussion()["personas"][:1])
    assert parse_scenario(alone, "manifest.json").personas[0].id == "dan"


def test_ids_up_to_100_characters(tmp_path):
    assert load_scenario(write(tmp_path / "a.yaml", dump(discussion(id="a" * 100)))).id
    with pytest.raises(InputError, match="101 characters"):
        load_scenario(write(tmp_path / "b.yaml", dump(discussion(id="a" * 101))))


# Folders ------------------------------------------------------------------------------------

def test_folders_are_scanned_in_path_order_without_following_folder_links(tmp_path):
    root = tmp_path / "set"
    (root / "b.yaml").mkdir(parents=True)  # a folder named like a file: scanned as a folder
    write(root / "b.yaml" / "inner.yaml", dump(discussion(id="inner")))
    write(root / "a.yaml", dump(discussion(id="a")))
    write(root / "c.yml", dump(discussion(id="c")))
    write(root / "_draft.yaml", "not: [valid")
    write(root / "notes.txt", "ignored")
    write(root / "cases.jsonl", "not read from folders\n")
    os.symlink(root / "a.yaml", root / "d.yaml")  # a link to a file is a file
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside / "e.yaml", dump(discussion(id="e")))
    os.symlink(outside, root / "linked")  # a link to a folder is not followed
    os.symlink(root, root / "loop")
    found = [p.relative_to(root).as_posix() for p in iter_scenario_files([root])]
    assert found == ["a.yaml", "b.yaml/inner.yaml", "c.yml", "d.yaml"]
    with pytest.raises(InputError, match="also used by"):  # d.yaml is a.yaml again
        load_scenarios([root])


def test_a_catalogue_beside_scenarios_is_skipped(tmp_path):
    write(tmp_path / "biases.yaml", "# a catalogue\ncatalogue: mine\nbiases: []\n")
    write(tmp_path / "s.yaml", dump(discussion()))
    assert [p.name for p in iter_scenario_files([tmp_path])] == ["s.yaml"]


# Templates ----------------------------------------------------------------------------------

def test_templates_fill_named_fields_only():
    assert fill("{{literal}} {name} {{{name}}}", {"name": "Ann"}) == "{literal} Ann {Ann}"
    assert fill("{a}", {"a": "{b.__class__}"}) == "{b.__class__}"  # values are never templates
    assert placeholders("{x} and {y} and {x}") == ["x", "y"]
    for bad in ["{name:>400000000}", "{name.__class__}", "{x[0]}", "{n!r}", "{}", "{", "}",
                "{a b}", "{0}"]:
        with pytest.raises(TemplateError):
            fill(bad, {"name": "x", "x": "y", "n": "z", "a b": "c", "0": "d"})


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="{}ab:.[]!0 ", max_size=40))
def test_any_template_fills_or_raises_a_template_error(template):
    try:
        result = fill(template, {"a": "1", "ab": "22", "b": "333"})
    except TemplateError:
        return
    assert len(result) <= 3 * len(template)


def test_role_prompts_and_questions_use_the_inert_fill():
    scenario = parse_scenario(setup(role_prompt="You are {name} {{not a field}}.",
                                    question="Rank {options} on {{criteria}} from {low}."),
                              "s.yaml")
    persona = scenario.persona("chair")
    assert render_role_prompt(scenario.protocol.roles["chair"].prompt, persona, "chair") == \
        "You are Morgan {not a field}."
    text = question(scenario.protocol.decisions[0], scenario)
    assert text.startswith("Rank Emily, Daniel, Sarah on {criteria} from 1.")
    assert '{"ranking"' in text  # the answer format's own braces survive


def test_the_bias_catalogue_text_is_an_inert_template(tmp_path):
    from agentsim.scenario.biases import load_catalogue

    shipped = load_catalogue(REPO / "scenarios" / "clinical" / "biases.yaml")
    assert shipped.biases
    bad = write(tmp_path / "c.yaml", "catalogue: c\nbiases:\n  - role: doctor\n    name: x\n"
                "    kind: implicit\n    attribute: race\n    generic: g\n"
                "    text: 'You dislike {other.__class__}.'\n")
    with pytest.raises(InputError, match="attribute access"):
        load_catalogue(bad)
