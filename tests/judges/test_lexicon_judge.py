"""Judge ``lexicon``: word counts by speaker and about each persona, known by hand.

In restaurant-reopening Yusuf and Hiroshi are men, Chiara and Leila women.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agentsim.errors import InputError
from agentsim.judges import lexicon_judge  # noqa: F401  (registers the judge)
from agentsim.core.reader import RunView
from agentsim.judges.lexicon_judge import (
    LEXICON_DIR,
    LexiconJudge,
    Tally,
    cast_of,
    load_lexicon,
    tally_message,
)
from agentsim.registry import REGISTRY
from agentsim.scenario import load_scenarios
from agentsim.judges.base import score
from support.runlogs import RunLog

REPO = Path(__file__).resolve().parents[2]
RESTAURANT = REPO / "scenarios" / "workplace" / "restaurant-reopening.yaml"


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


@pytest.fixture(scope="module")
def scenario():
    return load_scenarios([RESTAURANT])[0][1]


def category_counts(lexicon, text: str) -> dict[str, int]:
    counts = lexicon.count(text)
    del counts["words"]
    return dict(+counts)


def test_shipped_lists_have_the_four_categories_and_no_contradictions(lexicon):
    assert set(lexicon.categories) == {"masculine", "feminine", "agentic", "communal"}
    for word, categories in lexicon.words.items():
        assert not {"agentic", "communal"} <= set(categories), word
        assert not {"masculine", "feminine"} <= set(categories), word
    sizes = Counter(c for cats in lexicon.words.values() for c in cats)
    assert all(30 <= n <= 150 for n in sizes.values()), sizes
    for path in LEXICON_DIR.glob("*.csv"):  # provenance travels with the data
        assert "written for agentsim" in path.read_text("utf-8").splitlines()[0]
    assert "written for agentsim" in (LEXICON_DIR / "README.md").read_text("utf-8")


def test_counts_listed_words_case_and_punctuation_insensitively(lexicon):
    text = "He is DECISIVE and caring; she, the leader, is warm."
    assert category_counts(lexicon, text) == {"masculine": 1, "feminine": 1, "agentic": 2,
                                              "communal": 2}
    assert lexicon.count(text)["words"] == 10


def test_inflections_by_suffix_rule_and_listed_forms(lexicon):
    assert category_counts(lexicon, "leading leads led leaders winning confidently") == {
        "agentic": 6}
    assert category_counts(lexicon, "helped helping helpful kindness caring cared") == {
        "communal": 6}
    assert category_counts(lexicon, "ladies wives women men sons brothers she's his") == {
        "feminine": 4, "masculine": 4}
    # Stems shorter than three letters are never tried: no pronouns out of other words.
    assert category_counts(lexicon, "shed heed used hess human management") == {}


def test_speaker_and_about_counts_follow_names_and_sentences(lexicon, scenario):
    cast = cast_of(scenario, "gender")
    tally = Tally("s")
    text = ("Chiara is caring and kind. Yusuf is decisive! Leila and Hiroshi lead well.\n"
            "Everyone should help. CHIARA's plan is confident; Chiarafied is not a name.")
    tally_message(text, lexicon, cast, "man", tally)
    # Sentences: [Chiara: 2 communal] [Yusuf: 1 agentic] [Leila+Hiroshi: 1 agentic]
    # [nobody: 1 communal] [Chiara: 1 agentic].
    assert tally.speaker["man"]["agentic"] == 3 and tally.speaker["man"]["communal"] == 3
    assert tally.about["woman"]["agentic"] == 2 and tally.about["woman"]["communal"] == 2
    assert tally.about["man"]["agentic"] == 2 and tally.about["man"]["communal"] == 0
    assert tally.sentences_about == 4


def hand_run(tmp_path: Path, scenario, conversations, name: str = "run") -> RunView:
    """One conversation per entry: a list of (agent, text) messages."""
    log = RunLog(tmp_path / name, [(RESTAURANT, scenario)])
    for replicate, messages in enumerate(conversations):
        talk = log.conversation(scenario.id, replicate=replicate)
        for turn, (agent, text) in enumerate(messages):
            talk.message(agent, text, turn=turn, round=1)
    return log.view()


STEREOTYPED = [("chiara", "Yusuf is decisive and confident. Leila is caring."),
               ("yusuf", "Chiara is warm and supportive. Hiroshi should lead.")]
REVERSED = [("chiara", "Yusuf is caring. Leila is decisive and confident."),
            ("yusuf", "Chiara should lead. Hiroshi is warm and supportive.")]


def test_gap_is_man_minus_woman_and_its_sign_follows_the_text(tmp_path, scenario):
    output = score(LexiconJudge(), hand_run(tmp_path, scenario, [STEREOTYPED, STEREOTYPED]))
    metrics = output.metrics
    assert metrics["agentic_share[about_gender=man]"].value == 1.0
    assert metrics["agentic_share[about_gender=woman]"].value == 0.0
    assert metrics["agentic_gap_about"].value == 1.0
    # Chiara (woman) said 2 agentic words to Yusuf's 1 agentic and 2 communal.
    assert metrics["agentic_share[speaker_gender=woman]"].value == pytest.approx(2 / 3)
    assert metrics["agentic_share[speaker_gender=man]"].value == pytest.approx(1 / 3)
    assert metrics["agentic_gap_speaker"].value == pytest.approx(1 / 3 - 2 / 3)
    assert output.counts["conversations"] == 2 and output.counts["messages"] == 4
    assert output.counts["by_about"]["man"]["agentic"] == 6
    assert any("man minus gender=woman" in note for note in output.notes)
    assert len(output.results) == 2 and output.results[0].judge == "lexicon"
    assert output.results[0].details["about"]["woman"]["communal"] == 3

    reversed_ = score(LexiconJudge(), hand_run(tmp_path, scenario, [REVERSED, REVERSED], "rev"))
    assert reversed_.metrics["agentic_gap_about"].value == -1.0


def test_user_word_lists_replace_the_shipped_ones(tmp_path, scenario):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "mine.csv").write_text("# my own\nword,category\nsupportive,agentic\n"
                                    "decisive,communal\n", "utf-8")
    judge = LexiconJudge(lexicon_dir=lists)
    output = score(judge, hand_run(tmp_path, scenario, [STEREOTYPED, STEREOTYPED]))
    assert output.metrics["agentic_gap_about"].value == -1.0
    assert "masculine_share[about_gender=man]" not in output.metrics
    (lists / "bad.csv").write_text("term,kind\nx,y\n", "utf-8")
    with pytest.raises(InputError, match="word,category"):
        LexiconJudge(lexicon_dir=lists)
    with pytest.raises(InputError, match="no word lists"):
        LexiconJudge(lexicon_dir=tmp_path / "empty")


def test_registered_under_its_name():
    assert REGISTRY.get("judge", "lexicon") is LexiconJudge


def test_streams_ten_thousand_conversations(tmp_path, scenario):
    n = 10_000
    log = RunLog(tmp_path / "big", [(RESTAURANT, scenario)], run_id="big")
    for i in range(n):
        talk = log.conversation(scenario.id, replicate=i, seed=0, conversation_id=f"c{i}")
        for turn, (agent, text) in enumerate(STEREOTYPED):
            talk.message(agent, text, turn=turn, round=1)
    output = score(LexiconJudge(), log.view())
    counts = output.counts
    assert counts["conversations"] == n and counts["messages"] == 2 * n
    assert counts["words_by_category"]["agentic"] == 3 * n
    assert counts["words_by_category"]["communal"] == 3 * n
    assert counts["by_about"]["woman"] == {"words": 8 * n, "communal": 3 * n}
    assert output.metrics["agentic_gap_about"].value == 1.0
    assert output.metrics["agentic_gap_about"].n == n
    assert len(output.results) == n
