"""The clinical consultation's measurement agent: a model reading the case's findings (the
default, as published) or the records clerk (``protocol.measurement: records``).

Either way the ``test_result`` decision logs what the case holds for the request — the clerk's
lookup (agentsim.agents.clinical_records): the records it matched, and ``in_case: no`` when it
found nothing — beside the answer said to the doctor, so that a model's answer can be checked
against the case. The clerk answers the matched findings verbatim, or "not available in this
case" (never "normal"). The model is given the case's findings, the request and the requests
so far (agentsim.agents.clinical_texts); it is a tool of the consultation, not a party, so the
arm's mitigations do not shape its prompt.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agentsim.agents import clinical_prompts as prompts
from agentsim.agents.clinical_parsing import describe_records, find_records
from agentsim.core.decisions import TestResultDecision
from agentsim.orchestrator.kernel import Utterance, heard, say
from agentsim.orchestrator.runtime import ConversationContext

async def measurement_node(state: dict[str, Any], runtime: Runtime[ConversationContext]) -> dict:
    """The results of the requested test: the measurement model's answer from the case's
    findings, or the records clerk's (the findings that match, or not available)."""
    ctx = runtime.context
    case, request = ctx.scenario.case, state["action_text"]
    found = find_records(request, case.exam, case.tests)
    texts = ctx.scenario.protocol.prompt_set()
    if ctx.scenario.protocol.measurement == "records":
        content = describe_records(found) if found else texts.fill("not_available")
    else:
        dialogue = state["dialogue"]
        # The request being answered is the doctor's last utterance; 'so far' is before it.
        earlier = dialogue[:-1] if dialogue and dialogue[-1]["agent"] == "doctor" else dialogue
        messages = prompts.measurement_messages(
            case, request=request,
            doctor_turn=state.get("action_raw") or (dialogue[-1]["content"] if dialogue else ""),
            dialogue=heard([u for u in earlier if _about_tests(u)], None,
                           texts.fill("no_requests")),
            history=published_history(earlier), system=texts.texts["measurement_system"],
            turn=texts.texts["measurement_turn"], no_findings=texts.fill("no_findings"))
        reply = await ctx.call(agent="measurement", role="measurement", purpose="measurement",
                               messages=messages, turn=state["turn"],
                               context={"request": request})
        content = reply.text.strip()
    ctx.decided(TestResultDecision(request=request, matched=[name for name, _ in found],
                                   in_case=bool(found)),
                turn=state["turn"], agent="measurement", phase="test", raw=request,
                parsed_by="records")
    message = say(ctx, agent="measurement", content=content, turn=state["turn"],
                  phase="consultation", audience=["doctor"])
    return {"dialogue": [message], "turn": state["turn"] + 1}


def _about_tests(utterance: Utterance) -> bool:
    return utterance["agent"] == "measurement" or (
        utterance["agent"] == "doctor" and utterance["content"].startswith("REQUEST TEST:"))


def published_history(dialogue: list[Utterance]) -> str:
    """The published measurement agent's history before a request: every patient answer, and
    every earlier request with its result, each followed by a blank line (agentclinic.py:549,
    557-558, 649, 657); the request being answered is not in it."""
    parts: list[str] = []
    for index, utterance in enumerate(dialogue):
        if utterance["agent"] == "patient":
            parts.append(utterance["content"] + "\n\n")
        elif utterance["agent"] == "measurement" and index:
            parts.append(f"{dialogue[index - 1]['content']}\n\n{utterance['content']}\n\n")
    return "".join(parts)


def heard_values(dialogue: list[Utterance], viewer: str, empty: str) -> dict[str, str]:
    """The placeholders of what ``viewer`` (doctor or patient) was told so far: {dialogue},
    'Speaker: text' lines of what it heard, and the published agent's {history} and
    {question} (agentclinic.py:515-516, 435-436, 649): each question it was given followed by
    its answer, each followed by a blank line, and the last question, not yet answered. The
    published patient also hears every test result; the doctor's first question is empty."""
    history, question = "", ""
    for utterance in dialogue:
        agent, content = utterance["agent"], utterance["content"]
        if agent == viewer:
            history += f"{question}\n\n{content}\n\n"
            question = ""
        elif viewer == "patient" and agent == "measurement":
            history += content + "\n\n"
        elif viewer == "patient" or (utterance["audience"] is None
                                     or viewer in utterance["audience"]):
            question = content
    return {"dialogue": heard(dialogue, viewer, empty), "history": history,
            "question": question}
