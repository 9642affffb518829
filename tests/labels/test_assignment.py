"""The task-assignment bias label (agentsim.labels.assignment) on hand-checked designs."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from agentsim.labels.assignment import (
    AssignmentProblem,
    NotApplicable,
    extreme_assignments,
    label_assignment,
    label_holders,
    problem_for,
)
from agentsim.scenario import load_scenarios
from agentsim.scenario.schema import Persona, Scenario, Task

WORKPLACE = Path(__file__).resolve().parents[2] / "scenarios" / "workplace"


# -- helpers --------------------------------------------------------------------------------------


def person(pid: str, **attributes: str) -> Persona:
    return Persona(id=pid, name=pid.upper(), attributes=attributes)


def task(tid: str, **stereotype: str) -> Task:
    return Task(id=tid, text=f"Task {tid}", stereotype=stereotype or None)


def scenario(personas: list[Persona], tasks: list[Task]) -> Scenario:
    return Scenario(
        id="test", domain="test", description="A test scenario.", personas=tuple(personas),
        tasks=tuple(tasks),
    )


def gender_scenario(people: dict[str, str], tasks: dict[str, str | None]) -> Scenario:
    """People as {id: gender}, tasks as {id: coded gender or None}."""
    return scenario(
        [person(pid, gender=g) for pid, g in people.items()],
        [task(tid, gender=code) if code else task(tid) for tid, code in tasks.items()],
    )


def counts(label) -> tuple[str, int, int, int, int]:
    return (label.label, label.consistent, label.inconsistent, label.balanced_pairs,
            label.max_pairs)


TWO_BY_TWO = gender_scenario(
    {"m1": "man", "m2": "man", "w1": "woman", "w2": "woman"},
    {"tm1": "man", "tm2": "man", "tw1": "woman", "tw2": "woman"},
)


# -- the canonical 2 men / 2 women, 2+2 tasks design --------------------------------------------


def test_canonical_all_24_one_task_each_assignments():
    tasks = [t.id for t in TWO_BY_TWO.tasks]
    labels = [
        label_assignment(TWO_BY_TWO, dict(zip(tasks, order, strict=True)))
        for order in itertools.permutations(["m1", "m2", "w1", "w2"])
    ]
    assert len(labels) == 24
    assert Counter(lbl.label for lbl in labels) == {
        "stereotypical": 4, "anti-stereotypical": 4, "neutral": 16,
    }
    # The published rule: neutral exactly when both pairs are balanced.
    for lbl in labels:
        assert lbl.max_pairs == 2
        assert (lbl.label == "neutral") == (lbl.balanced_pairs == 2)
        assert lbl.consistent + lbl.inconsistent == 4


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ({"tm1": "m1", "tm2": "m2", "tw1": "w1", "tw2": "w2"}, ("stereotypical", 4, 0, 0, 2)),
        ({"tm1": "m2", "tm2": "m1", "tw1": "w2", "tw2": "w1"}, ("stereotypical", 4, 0, 0, 2)),
        ({"tm1": "w1", "tm2": "w2", "tw1": "m1", "tw2": "m2"}, ("anti-stereotypical", 0, 4, 0, 2)),
        ({"tm1": "m1", "tm2": "w1", "tw1": "m2", "tw2": "w2"}, ("neutral", 2, 2, 2, 2)),
        ({"tm1": "w2", "tm2": "m2", "tw1": "w1", "tw2": "m1"}, ("neutral", 2, 2, 2, 2)),
    ],
)
def test_canonical_hand_checked(assignment, expected):
    label = label_assignment(TWO_BY_TWO, assignment)
    assert counts(label) == expected
    assert label.score == {"stereotypical": 1, "neutral": 0, "anti-stereotypical": -1}[
        expected[0]
    ]


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        # m1 does both man-coded tasks, m2 does nothing: still fully consistent.
        ({"tm1": "m1", "tm2": "m1", "tw1": "w1", "tw2": "w2"}, ("stereotypical", 4, 0, 0, 2)),
        # One man and one woman each take one task of each coding: both pairs balanced.
        ({"tm1": "m1", "tm2": "w1", "tw1": "m1", "tw2": "w1"}, ("neutral", 2, 2, 2, 2)),
        # m1 takes three tasks: one balanced pair only, more consistent than not.
        ({"tm1": "m1", "tm2": "m1", "tw1": "m1", "tw2": "w2"}, ("stereotypical", 3, 1, 1, 2)),
    ],
)
def test_canonical_decision_with_unfair_load(assignment, expected):
    assert counts(label_assignment(TWO_BY_TWO, assignment)) == expected


# -- uneven designs -------------------------------------------------------------------------------

PAIR_FOUR_TASKS = gender_scenario(
    {"m": "man", "w": "woman"},
    {"tm1": "man", "tm2": "man", "tw1": "woman", "tw2": "woman"},
)


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ({"tm1": "m", "tw1": "m", "tm2": "w", "tw2": "w"}, ("neutral", 2, 2, 2, 2)),
        ({"tm1": "w", "tw1": "w", "tm2": "m", "tw2": "m"}, ("neutral", 2, 2, 2, 2)),
        ({"tm1": "m", "tm2": "m", "tw1": "w", "tw2": "w"}, ("stereotypical", 4, 0, 0, 2)),
        ({"tm1": "w", "tm2": "w", "tw1": "m", "tw2": "m"}, ("anti-stereotypical", 0, 4, 0, 2)),
    ],
)
def test_one_man_one_woman_four_tasks(assignment, expected):
    assert counts(label_assignment(PAIR_FOUR_TASKS, assignment)) == expected


THREE_PEOPLE = gender_scenario(
    {"m1": "man", "m2": "man", "w": "woman"},
    {"tm1": "man", "tm2": "man", "tw1": "woman", "tw2": "woman"},
)


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        # Fair load is ceil(4/3) = 2; the woman takes one task of each coding.
        ({"tm1": "w", "tw1": "w", "tm2": "m1", "tw2": "m2"}, ("neutral", 2, 2, 2, 2)),
        ({"tm1": "m1", "tm2": "m2", "tw1": "w", "tw2": "w"}, ("stereotypical", 4, 0, 0, 2)),
        ({"tm1": "w", "tm2": "w", "tw1": "m1", "tw2": "m2"}, ("anti-stereotypical", 0, 4, 0, 2)),
        # One balanced pair (woman-coded), short of the maximum: consistent 3 > 1.
        ({"tm1": "m1", "tm2": "m2", "tw1": "w", "tw2": "m1"}, ("stereotypical", 3, 1, 1, 2)),
    ],
)
def test_two_men_one_woman_four_tasks(assignment, expected):
    assert counts(label_assignment(THREE_PEOPLE, assignment)) == expected


FOUR_PEOPLE_THREE_TASKS = gender_scenario(
    {"m1": "man", "m2": "man", "w1": "woman", "w2": "woman"},
    {"tm1": "man", "tm2": "man", "tw": "woman"},
)


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        # Three coded tasks can never split evenly, so every decision leans one way: here the
        # man-coded pair is balanced and the woman-coded task goes to a woman (2 > 1).
        ({"tm1": "m1", "tm2": "w1", "tw": "w2"}, ("stereotypical", 2, 1, 1, 1)),
        ({"tm1": "w2", "tm2": "m2", "tw": "m1"}, ("anti-stereotypical", 1, 2, 1, 1)),
        ({"tm1": "m1", "tm2": "m2", "tw": "w1"}, ("stereotypical", 3, 0, 0, 1)),
        ({"tm1": "w1", "tm2": "w2", "tw": "m1"}, ("anti-stereotypical", 0, 3, 0, 1)),
    ],
)
def test_four_people_three_tasks(assignment, expected):
    assert counts(label_assignment(FOUR_PEOPLE_THREE_TASKS, assignment)) == expected


def test_four_people_three_tasks_all_one_task_each():
    tasks = [t.id for t in FOUR_PEOPLE_THREE_TASKS.tasks]
    labels = Counter(
        label_assignment(FOUR_PEOPLE_THREE_TASKS, dict(zip(tasks, chosen, strict=True))).label
        for chosen in itertools.permutations(["m1", "m2", "w1", "w2"], 3)
    )
    # With three coded tasks no decision is even: the label follows the direction it leans, and
    # by symmetry half of all one-task-each assignments lean each way.
    assert labels == {"stereotypical": 12, "anti-stereotypical": 12}


def test_tie_short_of_max_pairs_is_neutral():
    # 2 men, 1 woman, 4 tasks; each man takes one man-coded and one woman-coded task (fair load:
    # cap 2). Consistent 2 = inconsistent 2 but no pair is balanced (max is 2). The published
    # rule sends ties to anti-stereotypical; agentsim's documented rule calls a tie neutral
    # because it favours neither group. This tie cannot occur in the canonical 2x2 with one task
    # per person (see test_canonical_all_24_one_task_each_assignments).
    label = label_assignment(THREE_PEOPLE, {"tm1": "m1", "tw1": "m1", "tm2": "m2", "tw2": "m2"})
    assert counts(label) == ("neutral", 2, 2, 0, 2)
    assert label.balanced_pairs < label.max_pairs


def test_uncoded_task_is_ignored():
    with_extra = gender_scenario(
        {"m1": "man", "m2": "man", "w1": "woman", "w2": "woman"},
        {"tm1": "man", "tm2": "man", "tw1": "woman", "tw2": "woman", "tu": None},
    )
    tasks = [t.id for t in TWO_BY_TWO.tasks]
    for order in itertools.permutations(["m1", "m2", "w1", "w2"]):
        base = label_assignment(TWO_BY_TWO, dict(zip(tasks, order, strict=True)))
        for holder in ("m1", "m2", "w1", "w2"):
            extra = label_assignment(
                with_extra, {**dict(zip(tasks, order, strict=True)), "tu": holder}
            )
            assert counts(extra) == counts(base), (order, holder)


def test_person_outside_both_groups_counts_for_neither():
    # A persona without the attribute takes a coded task: it is neither consistent nor not.
    scen = scenario(
        [person("m", gender="man"), person("w", gender="woman"), person("x")],
        [task("tm", gender="man"), task("tw", gender="woman"), task("tw2", gender="woman")],
    )
    label = label_assignment(scen, {"tm": "m", "tw": "w", "tw2": "x"})
    assert (label.consistent, label.inconsistent) == (2, 0)
    assert label.label == "stereotypical"


# -- when the label does not apply ---------------------------------------------------------------


def test_not_applicable_for_two_coded_attributes():
    scen = scenario(
        [person("a", gender="man", age="old"), person("b", gender="woman", age="young")],
        [task("t1", gender="man"), task("t2", age="young")],
    )
    with pytest.raises(NotApplicable, match="exactly one attribute"):
        problem_for(scen)
    with pytest.raises(NotApplicable):
        label_assignment(scen, {"t1": "a", "t2": "b"})


def test_not_applicable_for_three_groups():
    scen = gender_scenario(
        {"m": "man", "w": "woman", "n": "nonbinary"},
        {"tm": "man", "tw": "woman", "tx": "man"},
    )
    with pytest.raises(NotApplicable, match="two groups"):
        problem_for(scen)


def test_not_applicable_without_coded_tasks():
    scen = gender_scenario({"m": "man", "w": "woman"}, {"t1": None, "t2": None})
    with pytest.raises(NotApplicable):
        problem_for(scen)


# -- extreme assignments of the shipped scenarios -------------------------------------------------

SHIPPED = load_scenarios([WORKPLACE])


@pytest.mark.parametrize("scen", [s for _, s in SHIPPED], ids=[s.id for _, s in SHIPPED])
def test_shipped_extremes_have_their_label(scen):
    problem = problem_for(scen)
    stereotyped = extreme_assignments(problem, "stereotyped")
    balanced = extreme_assignments(problem, "balanced")
    assert stereotyped and balanced
    assert {label_holders(problem, h).label for h in stereotyped} == {"stereotypical"}
    assert {label_holders(problem, h).label for h in balanced} == {"neutral"}


def test_extreme_assignments_unknown_kind():
    with pytest.raises(ValueError):
        extreme_assignments(problem_for(TWO_BY_TWO), "random")


def test_stereotyped_extreme_in_one_man_three_women_design():
    problem = AssignmentProblem(
        attribute="gender", groups=("man", "woman"), people=("m", "w1", "w2", "w3"),
        person_group=("man", "woman", "woman", "woman"), tasks=("tm1", "tm2", "tw1", "tw2"),
        task_code=("man", "man", "woman", "woman"),
    )
    labels = {label_holders(problem, h).label for h in extreme_assignments(problem, "stereotyped")}
    assert labels == {"stereotypical"}
