"""Counterfactual variants: ids, pairing, and no unintended changes."""

from __future__ import annotations

import pytest

from agentsim.errors import InputError
from agentsim.runs.runner import RunOptions, plan_jobs
from agentsim.scenario import load_scenario
from agentsim.scenario.schema import Scenario
from agentsim.scenario.variants import apply_variant, declared_variants, parse_vary


def declared(workplace):
    scenario = load_scenario(workplace / "restaurant-reopening.yaml")
    return scenario, {v.id: v for v in declared_variants(scenario)}


def test_declared_variant_ids_and_kinds(workplace):
    _, variants = declared(workplace)
    assert list(variants) == ["base", "mirror", "placebo-names#1", "placebo-names#2", "reworded"]
    assert [v.placebo for v in variants.values()] == [False, False, True, True, True]


def test_mirror_swaps_names_and_genders_between_pairs_only(workplace):
    scenario, variants = declared(workplace)
    mirrored = apply_variant(scenario, variants["mirror"])
    before = {p.id: (p.name, p.attributes["gender"]) for p in scenario.personas}
    after = {p.id: (p.name, p.attributes["gender"]) for p in mirrored.personas}
    assert set(before) == set(after)  # slots are kept
    for pid, (name, gender) in after.items():
        assert gender != before[pid][1]
        # The persona in this slot now carries a name and gender that some other slot had.
        assert (name, gender) in before.values()
    # Nothing but personas changes.
    assert mirrored.tasks == scenario.tasks and mirrored.description == scenario.description


def test_placebo_names_keep_groups_and_change_every_name(workplace):
    scenario, variants = declared(workplace)
    for vid in ("placebo-names#1", "placebo-names#2"):
        changed = apply_variant(scenario, variants[vid])
        for old, new in zip(scenario.personas, changed.personas, strict=True):
            assert new.attributes == old.attributes
            assert new.name != old.name
        assert len({p.name for p in changed.personas}) == len(changed.personas)
    # Draws are seeded by the scenario: the same names on every run.
    again = {v.id: v for v in declared_variants(scenario)}
    assert again["placebo-names#1"] == variants["placebo-names#1"]


def test_paraphrase_changes_only_the_text(workplace):
    scenario, variants = declared(workplace)
    reworded = apply_variant(scenario, variants["reworded"])
    assert reworded.description != scenario.description
    assert reworded.personas == scenario.personas and reworded.tasks == scenario.tasks


def test_names_variant_sets_group_and_a_pool_name(workplace):
    scenario = load_scenario(workplace / "office-product-launch.yaml")
    data = scenario.model_dump()
    data["variants"] = [{"kind": "names", "attribute": "gender", "persona": "daniel",
                         "count": 2}]
    variants = declared_variants(Scenario.model_validate(data))
    assert [v.id for v in variants] == ["base", "names:gender=man#1", "names:gender=man#2",
                                        "names:gender=woman#1", "names:gender=woman#2"]
    for variant in variants[1:]:
        changed = apply_variant(scenario, variant)
        daniel = changed.persona("daniel")
        assert daniel.attributes["gender"] == variant.id.split("=")[1].split("#")[0]
        assert daniel.name not in {p.name for p in scenario.personas}
        assert [p for p in changed.personas if p.id != "daniel"] == \
            [p for p in scenario.personas if p.id != "daniel"]


def test_variants_share_seeds_and_replicates(workplace):
    scenario, variants = declared(workplace)
    jobs = plan_jobs([scenario], RunOptions(model="scripted/fair", replicates=3))
    assert len(jobs) == 3 * len(variants)
    for replicate in range(3):
        seeds = {j.seed for j in jobs if j.replicate == replicate}
        assert len(seeds) == 1  # every variant of a replicate shares its seed
    assert len({j.seed for j in jobs}) == 3
    assert len({j.conversation_id for j in jobs}) == len(jobs)


def test_cli_vary_replaces_declared_variants(workplace):
    scenario, _ = declared(workplace)
    options = RunOptions(model="scripted/fair", variants=tuple(parse_vary(["yusuf.gender=woman"])))
    # --vary lists the levels to run; the file as written is not one of them.
    assert {j.variant for j in plan_jobs([scenario], options)} == {"gender=woman"}


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "mirror"}, "needs 'attribute'"),
    ({"kind": "names", "attribute": "gender"}, "needs 'persona'"),
    ({"kind": "names", "attribute": "gender", "persona": "nobody"}, "not a persona id"),
    ({"kind": "paraphrase"}, "needs 'description' or 'tasks'"),
    ({"kind": "paraphrase", "tasks": {"t9": "x"}}, "unknown task ids"),
])
def test_bad_variant_specs_are_clear_errors(workplace, spec, message):
    from agentsim.scenario.loader import parse_scenario

    data = load_scenario(workplace / "office-product-launch.yaml").model_dump()
    data["variants"] = [spec]
    with pytest.raises(InputError, match=message):
        parse_scenario(data, "x.yaml")


def test_mirror_needs_two_groups(workplace):
    data = load_scenario(workplace / "office-product-launch.yaml").model_dump()
    data["variants"] = [{"kind": "mirror", "attribute": "age"}]
    with pytest.raises(InputError, match="two groups"):
        declared_variants(Scenario.model_validate(data))
