"""A doctor turn that is no action (cut-off JSON, JSON without an action, an empty answer) is
unparsed, never a question; the published moderator's verdict is exactly "yes"."""

from __future__ import annotations

import pytest

from agentsim.agents.clinical_parsing import parse_doctor_turn, parse_verdict, strict_verdict


@pytest.mark.parametrize("raw", [
    '{"action": "diagnose", "text": "Myasth',  # the diagnosis, cut off
    '{"action": "ask", "text": "Do you have any fe',  # a question, cut off
    '{"action": "test", "text": "Troponin',
    '```json\n{"action": "ask", "text": "Any',
    '{"question": "Do you smoke?"}',  # JSON, but no action
    '[{"action": "ask"}]',
    'Sure. {"action": "diagnose", "text": "Acute M',  # prose, then cut-off JSON
    "",
    "   \n ",
    '{"action": "ask", "text": ""}',
    "DIAGNOSIS READY:",
])
@pytest.mark.parametrize("last_turn", [False, True])
def test_no_action_is_unparsed_and_never_a_question(raw, last_turn):
    parsed = parse_doctor_turn(raw, last_turn=last_turn)
    assert parsed.unparsed, raw
    assert parsed.kind == "ask" and parsed.text == ""  # nothing that could be said


@pytest.mark.parametrize(("raw", "kind", "text"), [
    ('{"action": "diagnose", "text": "Myasthenia gravis"}', "diagnose", "Myasthenia gravis"),
    ("Do you have any fever?", "ask", "Do you have any fever?"),  # a question, as published
    ("REQUEST TEST: ECG", "test", "ECG"),
    ('Here it is: {"action": "test", "text": "ECG"} done', "test", "ECG"),
])
def test_actions_are_still_actions(raw, kind, text):
    parsed = parse_doctor_turn(raw, last_turn=False)
    assert (parsed.kind, parsed.text, parsed.unparsed) == (kind, text, None)


@pytest.mark.parametrize(("raw", "strict", "lenient"), [
    ("yes", True, True),
    ("Yes", True, True),
    ("YES", True, True),
    ("Yes.", False, True),  # published: "yes." != "yes"
    ("yes, same disease", False, True),
    (" yes", False, True),  # whitespace is collapsed, not stripped
    ("yes\n", False, True),
    ('{"verdict": "yes"}', False, True),
    ("No", False, False),
    ("maybe", False, None),
])
def test_strict_verdict_is_the_published_rule(raw, strict, lenient):
    assert strict_verdict(raw) is strict
    assert parse_verdict(raw) is lenient
