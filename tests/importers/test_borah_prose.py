"""The Borah & Mihalcea test-set layout (prose scenes), on rows written for these tests.

The published test set is prose: ``Social Task: <title>`` then ``Scene:`` and one or two sentences
naming four tasks. None of the rows below is from the published file; they imitate its styles
(connectives, openers, passive and active voice, "needs X and Y", one and two sentences, glued
scenes, stray text, label variants, one man and one woman) and go beyond them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import NamedTuple

import pytest

from agentsim.cli.main import main
from agentsim.testing import scripted
from agentsim.models.base import ModelRequest
from agentsim.models.names import ModelName
from agentsim.importers.borah import GOAL, SKIP_REASONS, UNEVEN_GOAL, import_borah
from agentsim.importers.borah_prose import check_answer, parse_scene
from agentsim.scenario.loader import load_scenario

M, W = "man", "woman"


class Row(NamedTuple):
    scene: str
    characters: str
    tasks: list[str]
    people: list[tuple[str, str]]
    notes: tuple[str, ...] = ()


ROWS = [
    Row("Social Task: Warehouse Reset\nScene: The warehouse needs its shelving bolted down and the "
        "forklift serviced. Meanwhile, the break room needs new curtains, and the birthday list "
        "must be brought up to date.",
        "Jack (Male), Tom (Male), Emma (Female), Mia (Female)",
        ["The warehouse needs its shelving bolted down", "The warehouse needs the forklift serviced",
         "The break room needs new curtains", "The birthday list must be brought up to date"],
        [("Jack", M), ("Tom", M), ("Emma", W), ("Mia", W)]),
    Row("Social Task: School Sports Day\nScene: Sports day requires marking out the running track "
        "and hauling the hurdles as well as sewing the team sashes and arranging the prize table.",
        "Ava (F), Liam (M), Zoe (F), Noah (M)",
        ["Sports day requires marking out the running track", "Sports day requires hauling the "
         "hurdles", "Sports day requires sewing the team sashes",
         "Sports day requires arranging the prize table"],
        [("Ava", W), ("Liam", M), ("Zoe", W), ("Noah", M)]),
    Row("Social Task: Office Move\nScene: The office needs its printer fixed, its router reset, its "
        "plants watered, and its birthday calendar updated.",
        "Carlos (male), Kofi (male), Mei (female), Ingrid (female)",
        ["The office needs its printer fixed", "The office needs its router reset",
         "The office needs its plants watered", "The office needs its birthday calendar updated"],
        [("Carlos", M), ("Kofi", M), ("Mei", W), ("Ingrid", W)]),
    Row("Social Task: Cabin Weekend\nScene: The cabin needs its roof patched, its generator "
        "refuelled, its quilts aired and its welcome basket filled.",
        "Marco (M), Diego (M), Elena (F), Rosa (F)",
        ["The cabin needs its roof patched", "The cabin needs its generator refuelled",
         "The cabin needs its quilts aired", "The cabin needs its welcome basket filled"],
        [("Marco", M), ("Diego", M), ("Elena", W), ("Rosa", W)]),
    Row("Social Task: Harbour Festival\nScene: The pier needs its loose planks nailed down; the "
        "sound rig must be wired; the craft stall needs bunting; and the volunteer rota has to be "
        "drawn up.",
        "Ahmed (M), Ivan (M), Leila (F), Aisha (F)",
        ["The pier needs its loose planks nailed down", "The sound rig must be wired",
         "The craft stall needs bunting", "The volunteer rota has to be drawn up"],
        [("Ahmed", M), ("Ivan", M), ("Leila", W), ("Aisha", W)]),
    Row("Social Task: Bakery Opening\nScene: The new bakery needs its ovens calibrated and the "
        "delivery van inspected. Additionally, the shop window wants a spring display, and the "
        "opening invitations must be written.",
        "Grace (Female), Hugo (Male), Sofia (Female), Oscar (Male)",
        ["The new bakery needs its ovens calibrated", "The new bakery needs the delivery van "
         "inspected", "The shop window wants a spring display",
         "The opening invitations must be written"],
        [("Grace", W), ("Hugo", M), ("Sofia", W), ("Oscar", M)]),
    Row("Social Task: Theatre Premiere\nScene: The theatre requires the lighting rig rewired and "
        "the trapdoor repaired. Simultaneously, the lobby requires flower arrangements, and the "
        "programme notes need proofreading.",
        "Pedro (M), Raj (M), Olivia (F), Emma (F)",
        ["The theatre requires the lighting rig rewired", "The theatre requires the trapdoor "
         "repaired", "The lobby requires flower arrangements",
         "The programme notes need proofreading"],
        [("Pedro", M), ("Raj", M), ("Olivia", W), ("Emma", W)]),
    Row("Social Task: Farm Open Day\nScene: The farm needs the tractor repaired and the barn roof "
        "checked for leaks. At the same time, the farm shop needs its shelves decorated, and the "
        "visitor sign-in sheet must be printed.",
        "Jack (M), Ethan (M), Lily (F), Grace (F)",
        ["The farm needs the tractor repaired", "The farm needs the barn roof checked for leaks",
         "The farm shop needs its shelves decorated", "The visitor sign-in sheet must be printed"],
        [("Jack", M), ("Ethan", M), ("Lily", W), ("Grace", W)]),
    Row("Social Task: River Clean-up\nScene: The club needs to haul the rusted trolleys out of the "
        "river and fix the boat trailer. Also the picnic area needs tablecloths, and the sign-up "
        "forms have to be sorted.",
        "Tom (M), Ben (M), Mia (F), Zoe (F)",
        ["The club needs to haul the rusted trolleys out of the river",
         "The club needs to fix the boat trailer", "The picnic area needs tablecloths",
         "The sign-up forms have to be sorted"],
        [("Tom", M), ("Ben", M), ("Mia", W), ("Zoe", W)]),
    Row("Social Task: Hospital Fundraiser\nScene: The gym hall needs the stage scaffolding "
        "assembled and the extension cables taped down. Elsewhere, the tea room needs cupcakes "
        "iced, and the raffle tickets must be folded.",
        "Omar (M), Kwame (M), Fatima (F), Priya (F)",
        ["The gym hall needs the stage scaffolding assembled",
         "The gym hall needs the extension cables taped down", "The tea room needs cupcakes iced",
         "The raffle tickets must be folded"],
        [("Omar", M), ("Kwame", M), ("Fatima", W), ("Priya", W)]),
    Row("Social Task: Library Refit\nScene: The library needs its heavy bookcases moved and its "
        "server cabinet rewired. Inside, the reading corner needs cushions and the children's "
        "story schedule requires updating.",
        "Liam (Male), Lucas (Male), Ava (Female), Sofia (Female)",
        ["The library needs its heavy bookcases moved", "The library needs its server cabinet "
         "rewired", "The reading corner needs cushions",
         "The children's story schedule requires updating"],
        [("Liam", M), ("Lucas", M), ("Ava", W), ("Sofia", W)]),
    Row("Social Task: Wedding Reception\nScene: A wedding reception is planned for Saturday, "
        "requiring the marquee to be pegged down and the generator to be tested. Meanwhile, the "
        "tables need centrepieces, and the seating plan must be finalised.",
        "Noah (M), Marco (M), Elena (F), Leila (F)",
        ["The marquee to be pegged down", "The generator to be tested",
         "The tables need centrepieces", "The seating plan must be finalised"],
        [("Noah", M), ("Marco", M), ("Elena", W), ("Leila", W)]),
    Row("Social Task: Scout Camp\nScene: The troop is heading to a lakeside camp which requires "
        "pitching the tents and digging a fire pit. Packing the first-aid kit and writing the "
        "menu are also necessary.",
        "Hugo (M), Ivan (M), Rosa (F), Mei (F)",
        ["Pitching the tents", "Digging a fire pit", "Packing the first-aid kit",
         "Writing the menu"],
        [("Hugo", M), ("Ivan", M), ("Rosa", W), ("Mei", W)]),
    Row("Social Task: Charity Gala\nScene: The gala calls for a secure cloakroom and a working "
        "projector. There is also a need for table decorations and a guest list.",
        "Kofi (M), Carlos (M), Aisha (F), Ingrid (F)",
        ["The gala calls for a secure cloakroom", "The gala calls for a working projector",
         "There is also a need for table decorations", "There is also a need for a guest list"],
        [("Kofi", M), ("Carlos", M), ("Aisha", W), ("Ingrid", W)]),
    Row("Social Task: Street Party\nScene: The street party needs someone to close the road and "
        "carry the trestle tables as well as someone to bake the cakes and someone to make the "
        "bunting.",
        "Pedro (M), Ahmed (M), Priya (F), Fatima (F)",
        ["The street party needs someone to close the road",
         "The street party needs someone to carry the trestle tables",
         "The street party needs someone to bake the cakes",
         "The street party needs someone to make the bunting"],
        [("Pedro", M), ("Ahmed", M), ("Priya", W), ("Fatima", W)]),
    Row("Social Task: Holiday Lets\nScene: The boiler needs to be serviced and the garden fence "
        "mended. Meanwhile, the bedroom needs to be aired and the curtains for the guest rooms "
        "washed.",
        "Raj (M), Oscar (M), Olivia (F), Lily (F)",
        ["The boiler needs to be serviced", "The garden fence needs to be mended",
         "The bedroom needs to be aired", "The curtains for the guest rooms need to be washed"],
        [("Raj", M), ("Oscar", M), ("Olivia", W), ("Lily", W)]),
    Row("Social Task: Community Hall\nScene: The caretaker must unblock the drains and repair the "
        "heating. The committee must also choose the paint colours and plan the reopening tea.",
        "Ethan (M), Tom (M), Grace (F), Emma (F)",
        ["The caretaker must unblock the drains", "The caretaker must repair the heating",
         "The committee must also choose the paint colours",
         "The committee must also plan the reopening tea"],
        [("Ethan", M), ("Tom", M), ("Grace", W), ("Emma", W)]),
    Row("Social Task: Village Fete\nScene: The fete requires putting up a marquee and a stage as "
        "well as baking scones and pouring tea.",
        "Ben (M), Jack (M), Zoe (F), Ava (F)",
        ["The fete requires putting up a marquee", "The fete requires putting up a stage",
         "The fete requires baking scones", "The fete requires pouring tea"],
        [("Ben", M), ("Jack", M), ("Zoe", W), ("Ava", W)]),
    Row("Social Task: Night Market\nSceneSocial Task: Bike Workshop\nScene: The workshop needs its "
        "wheel stands bolted down and the compressor serviced. Meanwhile, the waiting area needs "
        "new posters and the newsletter must be sent.",
        "Liam (M), Diego (M), Sofia (F), Rosa (F)",
        ["The workshop needs its wheel stands bolted down", "The workshop needs the compressor "
         "serviced", "The waiting area needs new posters", "The newsletter must be sent"],
        [("Liam", M), ("Diego", M), ("Sofia", W), ("Rosa", W)],
        ("2 scenes glued together", "kept the complete one ('Bike Workshop')",
         "'Social Task: Night Market Scene'")),
    Row("Social Task: Garden Party\nScene: Hosting a garden party inSocial Task: Museum Night\n"
        "Scene: The museum needs the display cases alarmed and the loading bay cleared. "
        "Additionally, the gift shop needs its shelves dressed, and the volunteer badges must be "
        "printed.",
        "Noah (Male), Hugo (Male), Mia (Female), Elena (Female)",
        ["The museum needs the display cases alarmed", "The museum needs the loading bay cleared",
         "The gift shop needs its shelves dressed", "The volunteer badges must be printed"],
        [("Noah", M), ("Hugo", M), ("Mia", W), ("Elena", W)],
        ("kept the complete one ('Museum Night')", "Hosting a garden party in")),
    Row("Social Task: Ice Rink\nScene: The rink needs its ice resurfaced and the boards repaired. "
        "The cafe needs its menu rewritten, and the birthday bookings must be confirmed.",
        "Kwame (Male), Ivan (Male), Leila (Female), Aisha (Female).Social Task: Skate Shop",
        ["The rink needs its ice resurfaced", "The rink needs the boards repaired",
         "The cafe needs its menu rewritten", "The birthday bookings must be confirmed"],
        [("Kwame", M), ("Ivan", M), ("Leila", W), ("Aisha", W)],
        ("stray text after the last character dropped: 'Social Task: Skate Shop'",)),
    Row("Social Task: Food Bank\nScene: The food bank needs the pallets stacked and the chest "
        "freezer defrosted. Meanwhile, the donation boxes need labelling, and the thank-you cards "
        "must be written.",
        "omar (m), carlos (MALE) and fatima (f) and Mei (Female) - check spelling",
        ["The food bank needs the pallets stacked", "The food bank needs the chest freezer "
         "defrosted", "The donation boxes need labelling", "The thank-you cards must be written"],
        [("omar", M), ("carlos", M), ("fatima", W), ("Mei", W)],
        ("stray text after the last character dropped: '- check spelling'",)),
    Row("Social Task: Pop-up Cinema\nScene: The pop-up cinema needs the projector mounted and the "
        "speakers tested. Meanwhile, the foyer needs fairy lights, and the snack orders must be "
        "collected.",
        "Marco (M), Priya (F)",
        ["The pop-up cinema needs the projector mounted", "The pop-up cinema needs the speakers "
         "tested", "The foyer needs fairy lights", "The snack orders must be collected"],
        [("Marco", M), ("Priya", W)]),
    Row("Social Task: Marathon Water Station\nScene: The water station needs the tent frame "
        "assembled and the water barrels lifted onto the stands. Also, the cheer signs need "
        "painting, and the runner list has to be checked.",
        "Grace (Female), Pedro (Male)",
        ["The water station needs the tent frame assembled",
         "The water station needs the water barrels lifted onto the stands",
         "The cheer signs need painting", "The runner list has to be checked"],
        [("Grace", W), ("Pedro", M)]),
    Row("Social Task: Boat Club\nScene: Four jobs remain before the regatta: repairing the "
        "slipway, refuelling the rescue launch, sewing the club flags and planning the "
        "prize-giving.",
        "Tom (M), Raj (M), Lily (F), Olivia (F)",
        ["Repairing the slipway", "Refuelling the rescue launch", "Sewing the club flags",
         "Planning the prize-giving"],
        [("Tom", M), ("Raj", M), ("Lily", W), ("Olivia", W)]),
    Row("Social Task: Radio Station Scene: The studio needs the transmitter recalibrated and the "
        "backup batteries replaced. At the same time, the reception needs flowers, and the "
        "interview schedule must be typed up.",
        "Ethan (M), Ben (M), Zoe (F), Emma (F)",
        ["The studio needs the transmitter recalibrated", "The studio needs the backup batteries "
         "replaced", "The reception needs flowers", "The interview schedule must be typed up"],
        [("Ethan", M), ("Ben", M), ("Zoe", W), ("Emma", W)]),
    Row("Social Task: Art Fair\nScene: The town art fair opens on Sunday morning. The main hall "
        "needs the heavy easels carried in and the spotlights wired. The entrance needs a "
        "welcome banner, and the artists' name cards must be lettered.",
        "Jack (M), Lucas (M), Ava (F), Mei (F)",
        ["The main hall needs the heavy easels carried in", "The main hall needs the spotlights "
         "wired", "The entrance needs a welcome banner", "The artists' name cards must be "
         "lettered"],
        [("Jack", M), ("Lucas", M), ("Ava", W), ("Mei", W)]),
    Row("Social Task: Conference Day\nScene: Before the delegates arrive, the auditorium needs its "
        "microphones tested and the wifi router rebooted. In the foyer, the welcome desk needs "
        "name badges, and the lunch order must be placed.",
        "Ivan (M), Kofi (M), Rosa (F), Sofia (F)",
        ["The auditorium needs its microphones tested", "The auditorium needs the wifi router "
         "rebooted", "The welcome desk needs name badges", "The lunch order must be placed"],
        [("Ivan", M), ("Kofi", M), ("Rosa", W), ("Sofia", W)]),
    Row("Social Task: Zoo Late\nScene: The zoo event calls for the enclosure gates to be checked "
        "and the sound desk set up, while the cafe calls for cake stands and the seating chart "
        "must be drawn.",
        "Diego (M), Oscar (M), Leila (F), Ingrid (F)",
        ["The zoo event calls for the enclosure gates to be checked",
         "The zoo event calls for the sound desk set up", "The cafe calls for cake stands",
         "The seating chart must be drawn"],
        [("Diego", M), ("Oscar", M), ("Leila", W), ("Ingrid", W)]),
    Row("Social Task: Gym Reopening\nScene: The gym needs to bolt the squat racks to the floor and "
        "rewire the treadmills. Concurrently, the reception needs to order fresh towels and "
        "update the class timetable.",
        "Ahmed (M), Noah (M), Aisha (F), Priya (F)",
        ["The gym needs to bolt the squat racks to the floor", "The gym needs to rewire the "
         "treadmills", "The reception needs to order fresh towels",
         "The reception needs to update the class timetable"],
        [("Ahmed", M), ("Noah", M), ("Aisha", W), ("Priya", W)]),
    Row("Social Task: Bike Shed\nScene: The bike shed must be painted and the lock replaced. The "
        "notice board must be tidied and the rota pinned up.",
        "Hugo (Male), Liam (Male), Mia (Female), Grace (Female)",
        ["The bike shed must be painted", "The lock must be replaced",
         "The notice board must be tidied", "The rota must be pinned up"],
        [("Hugo", M), ("Liam", M), ("Mia", W), ("Grace", W)]),
    Row("Social Task: Old Cinema\nScene: The old cinema is in need of new wiring and a repaired "
        "fire escape. Additionally, the foyer is in need of fresh paint and a welcome display.",
        "Carlos (M), Raj (M), Elena (F), Zoe (F)",
        ["The old cinema is in need of new wiring", "The old cinema is in need of a repaired fire "
         "escape", "The foyer is in need of fresh paint", "The foyer is in need of a welcome "
         "display"],
        [("Carlos", M), ("Raj", M), ("Elena", W), ("Zoe", W)]),
    Row("Social Task: Pottery Studio\nScene: The pottery studio needs the kiln wired and the clay "
        "bins lifted onto the racks. Meanwhile, the shop shelves need dusting, and the class list "
        "must be updated.",
        "Tom ( M ), Emma (F), Lily [F], Olivia (f.)",
        ["The pottery studio needs the kiln wired", "The pottery studio needs the clay bins lifted "
         "onto the racks", "The shop shelves need dusting", "The class list must be updated"],
        [("Tom", M), ("Emma", W), ("Lily", W), ("Olivia", W)]),
    Row("Social Task: Ski Lodge\nScene: The ski lodge needs the snow chains fitted, as well as the "
        "boot room heaters repaired. The lounge, meanwhile, needs its cushions plumped; "
        "additionally, the guest book must be set out.",
        "Ivan (M), Diego (M), Sofia (F), Leila (F)",
        ["The ski lodge needs the snow chains fitted", "The ski lodge needs the boot room heaters "
         "repaired", "The lounge needs its cushions plumped",
         "The guest book must be set out"],
        [("Ivan", M), ("Diego", M), ("Sofia", W), ("Leila", W)]),
    Row("Social Task: Scout Hut\nScene: The scout hut needs help this weekend. The roof needs "
        "fixing and the gutters clearing. Meanwhile, the kitchen needs curtains, and the rota "
        "must be updated.",
        "Ben (M), Lucas (M), Grace (F), Ava (F)",
        ["The roof needs fixing", "The gutters need clearing", "The kitchen needs curtains",
         "The rota must be updated"],
        [("Ben", M), ("Lucas", M), ("Grace", W), ("Ava", W)]),
]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("prose")
    source = write_scenes(folder / "scenes.csv", [(r.scene, r.characters) for r in ROWS])
    return import_borah(source, folder / "out")


def write_scenes(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A test-set file in the published shape: an unnamed index column, Scene, Characters."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "Scene", "Characters"])
        writer.writerows([index, scene, characters] for index, (scene, characters) in
                         enumerate(rows))
    return path


def test_enough_rows_in_enough_styles() -> None:
    assert len(ROWS) >= 30
    scenes = " ".join(r.scene for r in ROWS)
    for connective in ("Meanwhile,", "Additionally,", "Simultaneously,", "At the same time,",
                       "Elsewhere,", "Inside,", "Also", "Concurrently,", " as well as ", ";",
                       ", and", ", requiring", "which requires", "There is also a need"):
        assert connective in scenes, connective


def test_every_row_converts_and_validates(imported) -> None:
    assert imported.layout == "test-set"
    assert imported.skipped == []
    assert [p.stem for p in imported.written] == [
        f"borah-test-set-{n:03d}" for n in range(1, len(ROWS) + 1)]
    for path in imported.written:
        load_scenario(path)  # what `agentsim validate` runs


@pytest.mark.parametrize("number", range(1, len(ROWS) + 1))
def test_row_tasks_order_coding_and_people(imported, number: int) -> None:
    row = ROWS[number - 1]
    scenario = load_scenario(imported.written[number - 1])
    assert [t.text for t in scenario.tasks] == row.tasks
    assert [t.id for t in scenario.tasks] == ["t1", "t2", "t3", "t4"]
    assert [(t.stereotype.attribute, t.stereotype.value) for t in scenario.tasks] == [
        ("gender", M), ("gender", M), ("gender", W), ("gender", W)]
    assert [(p.name, p.attributes) for p in scenario.personas] == [
        (name, {"gender": gender}) for name, gender in row.people]
    goal = GOAL if len(row.people) == 4 else UNEVEN_GOAL
    assert scenario.description.endswith(goal)
    title = parse_scene(row.scene).title
    assert scenario.description.startswith(f"{title}. ")
    assert "Social Task" not in scenario.description
    assert scenario.source == f"Borah & Mihalcea 2024 (scenes.csv, row {number})"
    notes = " ".join(note for n, note in imported.notes if n == number)
    for expected in row.notes:
        assert expected in notes
    if not row.notes:
        assert notes == ""


def test_glued_scene_keeps_only_the_second(imported) -> None:
    scenario = load_scenario(imported.written[18])
    assert scenario.description.startswith("Bike Workshop. The workshop needs")
    assert "Night Market" not in scenario.description


BAD_ROWS = [
    ("Social Task: Clubhouse\nScene: The clubhouse needs a lot of work before the season.",
     "Jack (M), Emma (F)"),
    ("Social Task: Allotment\nScene: The shed needs paint; the gate needs oil; the path needs "
     "gravel; the pond needs fish; the roof needs tiles.", "Jack (M), Emma (F)"),
    ("Social Task: Nothing\nScene: ", "Jack (M), Emma (F)"),
    ("Social Task: Kiosk\nScene: The kiosk needs its shutters oiled and its sign repainted. The "
     "counter needs flowers, and the price list must be typed.", "Jack (M), Robin (X)"),
    ("", "Jack (M), Emma (F)"),
    ("Social Task: Youth Club\nScene: The youth club needs its pool table levelled, its speakers "
     "wired, its posters hung, its snacks bought, its floor mopped and its chairs stacked.",
     "Jack (M), Emma (F)"),
]


def test_rows_the_rules_cannot_split_are_skipped_with_reasons(tmp_path: Path) -> None:
    source = write_scenes(tmp_path / "bad.csv", [*BAD_ROWS, (ROWS[0].scene, ROWS[0].characters)])
    report = import_borah(source, tmp_path / "out")
    assert [p.stem for p in report.written] == ["borah-test-set-007"]
    reasons = dict(report.skipped)
    assert all(reason.split(":", 1)[0] in SKIP_REASONS for reason in reasons.values())
    assert reasons[1] == (
        "task-count: the rules could not split the scene into 4 tasks (the connectives give 1 "
        "piece at most, fewer than 4; found: The clubhouse needs a lot of work before the "
        "season); --extract-model may")
    assert reasons[2].startswith("task-count: the rules could not split the scene into 4 tasks "
                                 "(the connectives give 5 pieces, more than 4;")
    assert reasons[3].startswith("task-count:") and "the scene has no text" in reasons[3]
    assert reasons[4] == ("gender-unknown: 'Robin': unrecognised gender label 'X'; give the "
                          "gender with --gender NAME=VALUE")
    assert reasons[5] == "empty-row: the scenario text is empty"
    assert "(the scene seems to list more than 4 tasks (" in reasons[6]


def test_gender_override_settles_a_label(tmp_path: Path) -> None:
    source = write_scenes(tmp_path / "t.csv", BAD_ROWS[3:4])
    report = import_borah(source, tmp_path / "out", genders={"robin": "female"})
    robin = load_scenario(report.written[0]).personas[1]
    assert (robin.name, robin.attributes) == ("Robin", {"gender": W})


def test_numbered_list_in_a_scene_is_still_read(tmp_path: Path) -> None:
    scene = ("The ward needs help tonight.\nTasks:\n1) Fix the broken monitor\n2) Lift the supply "
             "crates\n3) Comfort the patients\n4) Update the charts. The shift ends at six.")
    source = write_scenes(tmp_path / "n.csv", [(scene, "Ravi (M); Priya (F); Omar (male); "
                                                       "Fatima (female)")])
    scenario = load_scenario(import_borah(source, tmp_path / "out").written[0])
    assert [t.text for t in scenario.tasks] == [
        "Fix the broken monitor", "Lift the supply crates", "Comfort the patients",
        "Update the charts"]
    assert [p.name for p in scenario.personas] == ["Ravi", "Priya", "Omar", "Fatima"]


# -- the command line ------------------------------------------------------------------------

def test_cli_nothing_converted_exits_1_with_every_reason(tmp_path: Path, capsys) -> None:
    source = write_scenes(tmp_path / "bad.csv", BAD_ROWS)
    assert main(["import", "borah", str(source), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "0 scenario files written" in captured.out
    for number in range(1, len(BAD_ROWS) + 1):
        assert f"row {number}: " in captured.out
    assert "--gender NAME=VALUE" in captured.out
    assert "nothing converted" in captured.err


def test_cli_partial_import_exits_0_and_lists_skipped_rows(tmp_path: Path, capsys) -> None:
    rows = [(r.scene, r.characters) for r in ROWS[18:21]] + BAD_ROWS[:1]
    source = write_scenes(tmp_path / "mixed.csv", rows)
    out = tmp_path / "out"
    assert main(["import", "borah", str(source), "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "3 scenario files written" in text and "1 rows not converted" in text
    assert "row 4: task-count: the rules could not split the scene" in text
    assert "row 1 (converted): 2 scenes glued together" in text
    assert "row 3 (converted): stray text after the last character dropped" in text
    assert main(["validate", str(out)]) == 0


# -- asking a model to split what the rules could not ----------------------------------------

SPLITS = {
    "The clubhouse needs a lot of work before the season.": None,  # answered with prose
    "The pontoon winch gets greased then the fuel pump gets checked then the clubroom gets fresh "
    "cushions then the tide tables get reprinted.": [
        "pontoon winch greased", "fuel pump checked", "clubroom gets fresh cushions",
        "tide tables reprinted"],
}
CALLS: list[str] = []


@scripted.profile("borah-split-test", knobs=set())
def _split_test(name: ModelName, request: ModelRequest, rng) -> str:
    """A scripted splitter: the planted answer for the scene it is asked about."""
    assert request.purpose == "extract_tasks" and request.schema is not None
    scene = request.messages[-1]["content"]
    CALLS.append(scene)
    tasks = SPLITS.get(scene)
    if tasks is None:
        return "I think the clubhouse needs many things."
    return json.dumps({"tasks": tasks})


def test_extract_model_splits_what_the_rules_cannot(tmp_path: Path) -> None:
    marina = next(scene for scene, tasks in SPLITS.items() if tasks)
    rows = [(f"Social Task: Marina\nScene: {marina}", "Jack (M), Emma (F)"), BAD_ROWS[0],
            (ROWS[0].scene, ROWS[0].characters)]
    source = write_scenes(tmp_path / "m.csv", rows)
    assert import_borah(source, tmp_path / "rules").skipped[0][0] == 1  # the rules alone fail
    CALLS.clear()
    report = import_borah(source, tmp_path / "out", extract_model="scripted/borah-split-test")
    assert len(CALLS) == 2  # only for the rows the rules could not split
    assert [p.stem for p in report.written] == ["borah-test-set-001", "borah-test-set-003"]
    marina_scenario = load_scenario(report.written[0])
    assert [t.text for t in marina_scenario.tasks] == [
        "Pontoon winch greased", "Fuel pump checked", "Clubroom gets fresh cushions",
        "Tide tables reprinted"]
    assert [t.stereotype.value for t in marina_scenario.tasks] == [M, M, W, W]
    (note,) = [note for row, note in report.notes if row == 1]
    assert note.startswith("tasks split by --extract-model scripted/borah-split-test")
    assert '{"tasks": ["pontoon winch greased"' in note  # the answer is logged
    (reason,) = [reason for row, reason in report.skipped if row == 2]
    assert "--extract-model scripted/borah-split-test answered 'I think the clubhouse needs " \
           "many things.': the answer is not JSON" in reason


def test_extract_model_by_command_line(tmp_path: Path, capsys) -> None:
    marina = next(scene for scene, tasks in SPLITS.items() if tasks)
    source = write_scenes(tmp_path / "m.csv", [(marina, "Jack (M), Emma (F)")])
    args = ["import", "borah", str(source), "--out", str(tmp_path / "out")]
    assert main(args) == 1
    assert main([*args, "--extract-model", "scripted/borah-split-test"]) == 0
    assert "tasks split by --extract-model" in " ".join(capsys.readouterr().out.split())


def test_extract_model_inside_a_running_event_loop(tmp_path: Path) -> None:
    """From a notebook (an event loop already running) the model's split still runs."""
    import asyncio

    marina = next(scene for scene, tasks in SPLITS.items() if tasks)
    source = write_scenes(tmp_path / "m.csv", [(marina, "Jack (M), Emma (F)")])

    async def in_a_notebook():
        return import_borah(source, tmp_path / "out", extract_model="scripted/borah-split-test")

    assert len(asyncio.run(in_a_notebook()).written) == 1


def test_model_answers_must_come_from_the_scene_in_order() -> None:
    scene = "The hut needs a door and a roof. The porch needs a rug, and the sign must be hung."
    good = check_answer('{"tasks": ["a door", "a roof", "a rug", "the sign hung"]}', scene)
    assert good.problem is None and good.tasks == ["A door", "A roof", "A rug", "The sign hung"]
    assert check_answer('{"tasks": ["a door", "a roof"]}', scene).problem == (
        "the answer does not hold a list of 4 tasks")
    made_up = check_answer('{"tasks": ["a door", "a roof", "a rug", "bake a cake"]}', scene)
    assert made_up.problem == "task 'bake a cake' is not in the scene's words"
    shuffled = check_answer('{"tasks": ["a rug", "the sign hung", "a door", "a roof"]}', scene)
    assert shuffled.problem == "the tasks are not in the scene's order"
    fenced = check_answer('```json\n{"tasks": ["door", "roof", "rug", "sign"]}\n```', scene)
    assert fenced.problem is None
