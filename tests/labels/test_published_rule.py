"""The two bias rules of agentsim.labels.assignment: ``counts`` and the paper's literal
``published`` pair rule, compared assignment by assignment on the designs where they differ."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from agentsim.labels.assignment import (
    label_assignment,
    label_holders,
    problem_for,
    relabel,
    rule_label,
)
from agentsim.scenario.schema import Persona, Scenario, Task


def gender_scenario(people: dict[str, str], tasks: dict[str, str]) -> Scenario:
    return Scenario(
        id="rules", domain="test", description="Two rules.",
        personas=tuple(Persona(id=p, name=p.capitalize(), attributes={"gender": g})
                       for p, g in people.items()),
        tasks=tuple(Task(id=t, text=f"task {t}", stereotype={"gender": g})
                    for t, g in tasks.items()))


# One man, one woman, four tasks coded man, man, woman, woman (9 rows of the published test set).
ONE_EACH = gender_scenario({"jack": "man", "jill": "woman"},
                           {"t1": "man", "t2": "man", "t3": "woman", "t4": "woman"})
CODED = "MMWW"
S, N, A = "stereotypical", "neutral", "anti-stereotypical"

# holders of t1..t4 (M = Jack, W = Jill) → (consistent, inconsistent, balanced pairs,
# counts label, published label), worked out by hand from the rules' wording.
EXPECTED = {
    "MMMM": (2, 2, 0, N, A),
    "MMMW": (3, 1, 1, S, N), "MMWM": (3, 1, 1, S, N),
    "MWWW": (3, 1, 1, S, N), "WMWW": (3, 1, 1, S, N),
    "MMWW": (4, 0, 0, S, S),
    "MWMM": (1, 3, 1, A, N), "WMMM": (1, 3, 1, A, N),
    "WWMW": (1, 3, 1, A, N), "WWWM": (1, 3, 1, A, N),
    "MWMW": (2, 2, 2, N, A), "MWWM": (2, 2, 2, N, A),
    "WMMW": (2, 2, 2, N, A), "WMWM": (2, 2, 2, N, A),
    "WWMM": (0, 4, 0, A, A),
    "WWWW": (2, 2, 0, N, A),
}


def assignment(holders: str) -> dict[str, str]:
    return {f"t{i}": "jack" if h == "M" else "jill" for i, h in enumerate(holders, 1)}


def test_all_16_assignments_of_a_one_man_one_woman_row_under_both_rules():
    rows = ["".join(h) for h in itertools.product("MW", repeat=4)]
    assert sorted(rows) == sorted(EXPECTED) and len(rows) == 16
    differ = []
    for holders in rows:
        counts = label_assignment(ONE_EACH, assignment(holders), "counts")
        published = label_assignment(ONE_EACH, assignment(holders), "published")
        got = (counts.consistent, counts.inconsistent, counts.balanced_pairs, counts.label,
               published.label)
        assert got == EXPECTED[holders], holders
        assert published.pair_target == 1 and published.rule == "published"
        if counts.label != published.label:
            differ.append(holders)
    # Exactly where they differ: everywhere but the two fully one-sided assignments.
    assert sorted(differ) == sorted(set(rows) - {"MMWW", "WWMM"})
    assert len(differ) == 14


def test_the_other_readings_the_docstring_names_would_not_give_14():
    """"pairs ≥ min(#men, #women)" instead of "=" disagrees with counts on 10 rows, and on 8
    when ties short of the target are neutral too; only the literal reading gives the 14."""
    at_least = tie_neutral = 0
    for c, i, pairs, counts_label, _ in EXPECTED.values():
        alternative = N if pairs >= 1 else (S if c > i else A)
        at_least += alternative != counts_label
        softer = N if pairs >= 1 or c == i else (S if c > i else A)
        tie_neutral += softer != counts_label
    assert (at_least, tie_neutral) == (10, 8)


def test_canonical_two_by_two_one_task_each_rules_agree_on_all_24():
    scenario = gender_scenario({"m1": "man", "m2": "man", "w1": "woman", "w2": "woman"},
                               {"t1": "man", "t2": "man", "t3": "woman", "t4": "woman"})
    labels = [(label_assignment(scenario, dict(zip(["t1", "t2", "t3", "t4"], order)), "counts"),
               label_assignment(scenario, dict(zip(["t1", "t2", "t3", "t4"], order)),
                                "published"))
              for order in itertools.permutations(["m1", "m2", "w1", "w2"])]
    assert len(labels) == 24
    assert all(c.label == p.label for c, p in labels)
    assert Counter(p.label for _, p in labels) == {N: 16, S: 4, A: 4}


def test_one_man_three_women_published_calls_every_one_each_assignment_neutral():
    scenario = gender_scenario({"m": "man", "w1": "woman", "w2": "woman", "w3": "woman"},
                               {"t1": "man", "t2": "man", "t3": "woman", "t4": "woman"})
    problem = problem_for(scenario)
    published = {label_holders(problem, h, "published").label
                 for h in itertools.permutations(range(4))}
    counts = {label_holders(problem, h).label for h in itertools.permutations(range(4))}
    assert published == {N}  # the pair condition is met by every assignment
    assert counts == {S, A}  # one man: never an even count


def test_relabel_gives_the_label_of_the_other_rule_from_the_counts_alone():
    for holders in EXPECTED:
        counts = label_assignment(ONE_EACH, assignment(holders))
        assert relabel(counts, "published") == label_assignment(ONE_EACH, assignment(holders),
                                                                "published")
        assert relabel(relabel(counts, "published"), "counts") == counts


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown bias rule 'pairs'"):
        rule_label(1, 1, 0, 1, "pairs")
