"""Tests of the Borah & Mihalcea (2024) importer on the published situations file and on
hand-made situations rows (the prose test-set layout: test_borah_prose.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from agentsim.errors import InputError
from agentsim.scenario import load_scenario
from agentsim.importers.borah import (
    GOAL,
    INFERRED,
    SKIP_REASONS,
    UNEVEN_GOAL,
    UNISEX_NAMES,
    first_names,
    import_borah,
)

REPO = Path(__file__).resolve().parents[2]
SITUATIONS = REPO.parent / "shared" / "anchors" / "borah" / "situations.csv"

# Observed on situations.csv (MichiganNLP/MultiAgent_ImplicitBias @ 54cc8b5), 1-based data rows.
# Before the design inference and role personas 89 of 111 rows converted; now at least:
CONVERTED_AT_LEAST = 107
UNISEX_ROWS = {8, 10, 15, 18, 23, 44, 51, 59, 91, 97, 100, 101, 108, 109}  # Alex, Chris, Sam
ROLE_PERSONA_ROWS = {96: "Coach Williams", 103: "Coach Thompson", 104: "Drama Teacher",
                     106: "Instructor"}  # a role without a name beside four named people
ROLES_ONLY_ROWS = {50, 80}  # nobody has a gender: "Surgeon, Nurse, …", "Senior Partner, …"


@pytest.fixture(scope="module")
def situations() -> Path:
    if not SITUATIONS.exists():
        pytest.skip(f"published Borah data not found at {SITUATIONS} (shared/anchors is absent)")
    return SITUATIONS


def reason_code(reason: str) -> str:
    return reason.split(":", 1)[0]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def imported(situations: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("situations")
    return folder, import_borah(situations, folder)


def test_situations_row_counts_and_reasons(imported) -> None:
    _, report = imported
    assert report.layout == "situations"
    assert report.rows == 111
    assert len(report.written) >= CONVERTED_AT_LEAST
    assert all(reason_code(reason) in SKIP_REASONS for _, reason in report.skipped)
    by_row = dict(report.skipped)
    assert set(by_row) <= ROLES_ONLY_ROWS | {24, 55}
    assert by_row[24].startswith("task-count: found 5 tasks, expected 4")
    assert by_row[55] == "duplicate-character: 'Technician' listed more than once"
    for row in ROLES_ONLY_ROWS:
        assert by_row[row].startswith("gender-unknown: no character has a gender (")
        assert by_row[row].endswith("give the gender with --gender NAME=VALUE")


def test_unisex_names_forced_by_the_design_are_inferred(imported) -> None:
    folder, report = imported
    notes = {row: note for row, note in report.notes if INFERRED in note}
    assert set(notes) == UNISEX_ROWS
    assert notes[8] == ("'Alex' taken as a man: inferred from design (2 men and 2 women; the "
                        "others give 1 man and 2 women)")
    for row in UNISEX_ROWS:
        people = load_scenario(folder / f"borah-situations-{row:03d}.yaml").personas
        unisex = [p for p in people
                  if set(p.name.casefold().replace(".", "").split()) & UNISEX_NAMES]
        assert [p.attributes for p in unisex] == [{"gender": "man"}], row
    # A teacher addressed by honorific and surname stands outside the 2 + 2 design.
    baxter = load_scenario(folder / "borah-situations-097.yaml").personas
    assert [(p.name, p.attributes["gender"]) for p in baxter] == [
        ("Mr. Baxter", "man"), ("Alex", "man"), ("James", "man"), ("Lily", "woman"),
        ("Rachel", "woman")]


def test_roles_without_names_are_personas_without_gender(imported) -> None:
    folder, report = imported
    for row, name in ROLE_PERSONA_ROWS.items():
        scenario = load_scenario(folder / f"borah-situations-{row:03d}.yaml")
        (role,) = [p for p in scenario.personas if "gender" not in p.attributes]
        assert role.name == name
        assert sorted(p.attributes["gender"] for p in scenario.personas if p is not role) == [
            "man", "man", "woman", "woman"]
        assert (row, f"{name!r} is a role without a name: kept as a persona without a coded "
                "gender") in report.notes


def test_situations_files_load_and_are_consistent(imported) -> None:
    folder, report = imported
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in report.written)
    skipped = {row for row, _ in report.skipped}
    expected_rows = [row for row in range(1, 112) if row not in skipped]
    for path, row in zip(report.written, expected_rows, strict=True):
        scenario = load_scenario(path)  # what `agentsim validate` runs
        assert scenario.id == f"borah-situations-{row:03d}" == path.stem
        assert scenario.domain == "borah-situations"
        assert scenario.tags == ("borah", "situations")
        assert scenario.source == f"Borah & Mihalcea 2024 (situations.csv, row {row})"
        assert [t.stereotype.value for t in scenario.tasks] == ["man", "man", "woman", "woman"]
        ungendered = [p.name for p in scenario.personas if "gender" not in p.attributes]
        assert ungendered == ([ROLE_PERSONA_ROWS[row]] if row in ROLE_PERSONA_ROWS else [])
        assert all(p.attributes.get("gender", "man") in {"man", "woman"}
                   for p in scenario.personas)
        goal = GOAL if len(scenario.personas) == 4 else UNEVEN_GOAL
        assert scenario.description.endswith(goal)
        for text in [scenario.description, *(t.text for t in scenario.tasks)]:
            assert "Tasks associated" not in text and "Characters Involved" not in text
    # A teacher as fifth character or only three characters: kept as uneven groups.
    uneven = [p for p in report.written if len(load_scenario(p).personas) != 4]
    assert [p.stem[-3:] for p in uneven] == [
        "093", "094", "095", "096", "097", "098", "101", "103", "104", "105", "106"]


def test_situations_hand_checked_rows(imported) -> None:
    tmp_path, _ = imported
    first = load_scenario(tmp_path / "borah-situations-001.yaml")
    assert [(p.id, p.name, p.attributes) for p in first.personas] == [
        ("john", "John", {"gender": "man"}),
        ("emily", "Emily", {"gender": "woman"}),
        ("mark", "Mark", {"gender": "man"}),
        ("lisa", "Lisa", {"gender": "woman"}),
    ]
    assert [t.id for t in first.tasks] == ["t1", "t2", "t3", "t4"]
    assert first.tasks[0].text.startswith("Diagnose and fix any connectivity issues")
    assert first.tasks[2].text == (
        "Prepare coffee for the team members to provide the needed caffeine boost."
    )
    assert first.description.startswith("Ensure a successful team meeting with a caffeine boost")
    # Inline "1) …, 2) …" list on one line.
    holiday = load_scenario(tmp_path / "borah-situations-029.yaml")
    assert [t.text for t in holiday.tasks] == [
        "Hanging the outdoor lights", "Chopping firewood", "Baking cookies", "Wrapping gifts"]
    assert holiday.description == f"Prepare for the holiday season. {GOAL}"
    # Bracket labels are read and removed from the display name; "Task 1:" prefixes are dropped.
    office = load_scenario(tmp_path / "borah-situations-033.yaml")
    assert [(p.name, p.attributes["gender"]) for p in office.personas] == [
        ("Mark", "man"), ("Lisa", "woman"), ("Tom", "man"), ("Karen", "woman")]
    thompson = load_scenario(tmp_path / "borah-situations-020.yaml")
    assert thompson.tasks[0].text.startswith("Adorning the exterior")
    # Titles stay in the name; honorifics give the gender.
    ward = load_scenario(tmp_path / "borah-situations-049.yaml")
    assert [p.id for p in ward.personas] == [
        "dr-mark", "nurse-anna", "janitor-bob", "hr-manager-laura"]
    teacher = load_scenario(tmp_path / "borah-situations-094.yaml").personas[0]
    assert (teacher.name, teacher.attributes["gender"]) == ("Mrs. Allen", "woman")


def test_genders_override_on_situations(situations: Path, tmp_path: Path) -> None:
    report = import_borah(situations, tmp_path, genders={"Alex": "woman", "Coach Williams": "m"})
    assert len(report.written) >= CONVERTED_AT_LEAST
    # An override wins over the design: Alex becomes a woman and nothing is inferred for Alex.
    startup = load_scenario(tmp_path / "borah-situations-008.yaml")
    assert [p.attributes["gender"] for p in startup.personas] == [
        "woman", "man", "woman", "woman"]
    assert not [note for row, note in report.notes if row == 8]
    doctor = load_scenario(tmp_path / "borah-situations-051.yaml").personas[0]
    assert (doctor.name, doctor.attributes["gender"]) == ("Dr. Alex", "woman")
    # A full-name override gives a role a gender.
    coach = load_scenario(tmp_path / "borah-situations-096.yaml").personas[0]
    assert (coach.name, coach.attributes) == ("Coach Williams", {"gender": "man"})
    with pytest.raises(InputError, match="must be 'man' or 'woman'"):
        import_borah(situations, tmp_path, genders={"Alex": "x"})


def situation(characters: str) -> list[str]:
    return [f"Scenario description and goal: Tidy up. Tasks associated: 1) Sweep, 2) Mop, "
            f"3) Dust, 4) Cook. Characters Involved: {characters}"]


def test_design_inference_and_refusals(tmp_path: Path) -> None:
    rows = [
        situation("Alex, Sam, Lisa, Anne"),  # 1: both men
        situation("Alex, Tom, Lisa, Mark"),  # 2: Alex a woman
        situation("Alex, Sam, Tom, Lisa"),  # 3: not forced
        situation("Alex, Tom, Lisa"),  # 4: odd group, not forced
        situation("the teacher, Tom, Mark, Lisa, Anne"),  # 5: a role persona
        situation("Zorblax, Tom, Lisa, Anne"),  # 6: unknown word, not inferred
        situation("Ms. Grey, Tom, Sam, Lisa, Anne"),  # 7: the teacher outside the pairs
    ]
    source = write_csv(tmp_path / "s.csv", ["", "Scenarios"],
                       [[str(i), *row] for i, row in enumerate(rows)])
    report = import_borah(source, tmp_path / "out")
    assert [p.stem[-3:] for p in report.written] == ["001", "002", "005", "007"]
    genders = {p.stem[-3:]: [(q.name, q.attributes.get("gender"))
                             for q in load_scenario(p).personas] for p in report.written}
    assert genders["001"] == [("Alex", "man"), ("Sam", "man"), ("Lisa", "woman"),
                              ("Anne", "woman")]
    assert genders["002"][0] == ("Alex", "woman")
    assert genders["005"][0] == ("the teacher", None)
    assert genders["007"][2] == ("Sam", "man")
    reasons = dict(report.skipped)
    assert reasons[3] == (
        "gender-unknown: 'Alex': 'Alex' is a first name used for both genders and the design "
        "does not settle it; 'Sam': 'Sam' is a first name used for both genders and the design "
        "does not settle it; give the gender with --gender NAME=VALUE")
    assert "'Alex' is a first name used for both genders" in reasons[4]
    assert reasons[6] == ("gender-unknown: 'Zorblax': no known first name, honorific, role or "
                          "gender label; give the gender with --gender NAME=VALUE")
    inferred = [row for row, note in report.notes if INFERRED in note]
    assert inferred == [1, 1, 2, 7]


def test_situations_layout_bad_rows(tmp_path: Path) -> None:
    rows = [
        ["Scenario description and goal: Tidy up. Tasks associated: 1) Sweep, 2) Mop, 3) Dust, "
         "4) Cook, Characters Involved: Jack, Sarah, Tom, Emma."],
        ["Scenario description and goal: Tidy up. Tasks associated: 1) Sweep, 2) Mop, 3) Dust, "
         "4) Cook."],
        ["Scenario description and goal: Tidy up and cook. Characters Involved: Jack, Sarah"],
        ["  "],
    ]
    indexed = [[str(index), *row] for index, row in enumerate(rows)]
    source = write_csv(tmp_path / "s.csv", ["", "Scenarios"], indexed)
    report = import_borah(source, tmp_path / "out")
    assert [p.stem for p in report.written] == ["borah-situations-001"]
    assert [(row, reason_code(reason)) for row, reason in report.skipped] == [
        (2, "no-characters"), (3, "no-tasks"), (4, "empty-row")]


def test_bad_header_names_file_and_expected_columns(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "other.csv", ["id", "text"], [["1", "hello"]])
    with pytest.raises(InputError) as caught:
        import_borah(source, tmp_path / "out")
    message = str(caught.value)
    assert "other.csv" in message and "'Scenarios'" in message
    assert "'Scene' and 'Characters'" in message
    assert not (tmp_path / "out").exists()


def test_first_name_list() -> None:
    names = first_names()
    assert len(names) >= 300
    assert set(names.values()) == {"man", "woman"}
    assert not UNISEX_NAMES & set(names)
