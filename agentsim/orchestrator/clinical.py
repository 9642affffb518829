"""The clinical consultation protocol (in the manner of AgentClinic) as a LangGraph graph.

    START → doctor ─ask──▶ patient ──▶ doctor    (a fork may enter at patient or measurement)
                  ├test─▶ measurement ──▶ doctor
                  ├diagnose─▶ moderator ──▶ perception → END
                  ├unparsed (after one re-ask) ──▶ doctor
                  └budget spent without a diagnosis ──▶ perception → END

With probes on, after each answer the doctor is asked privately for its leading diagnosis (a
side call logged as a ``diagnosis_probe`` decision, never shown to anyone), which gives the
accuracy trajectory over the consultation.

The doctor has ``max_turns`` turns (a test request uses one) and is told when it is on its last.
A doctor turn that is no action (empty, cut-off or action-less JSON, a marker with nothing after
it; see agentsim.agents.clinical_parsing) is asked again once with a new seed, as decisions are
(``DECISION_REASKS``); if it is still no action it is logged as an unparsed ``doctor_action``
decision (value None, its raw text and why) and spends the turn: nothing is said to anyone and
the doctor speaks again.

The measurement agent (``protocol.measurement``: a model, or the records clerk) is in
agentsim.orchestrator.clinical_measurement. Every text is a prompt of the protocol's prompt set
(``protocol.prompt_set()``: agentsim/scenario/prompts/clinical.yaml, a preset's such as
agentclinic2024, or the user's). The moderator (its own model role) compares the diagnosis with
the truth, read leniently or, with ``moderator: strict``, as published (exactly "yes"); a
deterministic normaliser's verdict is logged beside it. Afterwards the patient rates the
consultation (confidence, compliance, return) as structured output.

Before a diagnosis becomes final, the arm's mitigations' ``reflect_diagnosis`` hook (e.g.
self_reflection's) may revise it; the revised diagnosis is the one recorded and checked.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agentsim.agents import clinical_prompts as prompts
from agentsim.agents.decisions import json_objects
from agentsim.agents.clinical_parsing import (
    DoctorAction,
    parse_doctor_turn,
    parse_perception,
    parse_verdict,
    same_diagnosis,
    strict_verdict,
)
from agentsim.core.decisions import (
    DiagnosisCheckDecision,
    DiagnosisProbeDecision,
    DoctorActionDecision,
    PerceptionDecision,
)
from agentsim.core.events import EventBase
from agentsim.errors import InputError
from agentsim.orchestrator.discussion import sampling
from agentsim.orchestrator.kernel import ConversationProtocol, Utterance, events_before, say
from agentsim.orchestrator.clinical_measurement import heard_values, measurement_node
from agentsim.orchestrator.runtime import DECISION_REASKS, ConversationContext
from agentsim.registry import protocol
from agentsim.scenario.schema import ClinicalProtocol, Scenario

SPEAKERS = {"doctor": "Doctor", "patient": "Patient", "measurement": "Measurement"}


class ClinicalState(TypedDict, total=False):
    """State of one consultation; ``dialogue`` accumulates through its reducer."""

    dialogue: Annotated[list[Utterance], operator.add]
    turn: int
    doctor_turns: int
    action: str  # 'ask', 'test', 'diagnose', or 'unparsed' (a spent turn)
    action_text: str
    action_raw: str  # the doctor's turn as it was answered
    diagnosis: str | None
    tests: int
    max_turns: int
    probes: bool
    entry: str  # the first node: 'doctor', or where a fork continues its parent


def bias_texts(ctx: ConversationContext, role: str) -> list[str]:
    """Rendered instructions of the biases the job injects into ``role``."""
    if ctx.job.bias == "none" or ctx.catalogue is None:
        return []
    other = ctx.scenario.persona("patient" if role == "doctor" else "doctor")
    keys = [k for k in ctx.job.bias.split("+") if k.startswith(f"{role}:")]
    return [ctx.catalogue.get(key).render(other) for key in keys]


def _heard(ctx: ConversationContext, state: ClinicalState, viewer: str) -> dict[str, str]:
    """What ``viewer`` was told so far (the prompts' dialogue, history, question)."""
    texts = ctx.scenario.protocol.prompt_set()
    return heard_values(state["dialogue"], viewer, texts.fill("empty_dialogue"))


def _say(ctx: ConversationContext, state: ClinicalState, speaker: str, content: str,
         visible_to: list[str]) -> Utterance:
    return say(ctx, agent=speaker, content=content, turn=state["turn"], phase="consultation",
               audience=visible_to)


def _patient_system(ctx: ConversationContext) -> dict[str, str]:
    """The patient's system message (role, notes, injected biases)."""
    scenario = ctx.scenario
    text = prompts.patient_system(scenario.protocol.prompt_set(), scenario.case,
                                  scenario.persona("patient"), scenario.persona("doctor"),
                                  bias_texts(ctx, "patient"))
    return {"role": "system", "content": ctx.system_prompt("patient", text, role="patient")}


def _doctor_system(ctx: ConversationContext, structured: bool, turn: int) -> dict[str, str]:
    """The doctor's system message for its turn ``turn`` (role, objective, budget, biases)."""
    scenario = ctx.scenario
    text = prompts.doctor_system(scenario.protocol.prompt_set(), scenario.case,
                                 scenario.persona("doctor"), scenario.persona("patient"),
                                 ctx.job.max_turns or 20, structured, bias_texts(ctx, "doctor"),
                                 tell_patient=scenario.protocol.doctor_sees == "patient",
                                 turn=turn)
    return {"role": "system", "content": ctx.system_prompt("doctor", text, role="doctor")}


async def doctor_node(state: ClinicalState, runtime: Runtime[ConversationContext]) -> dict:
    """One doctor turn: ask, request a test, or diagnose (an unparsed turn is asked again
    once, then logged and spent)."""
    ctx = runtime.context
    max_turns = ctx.job.max_turns or 20
    number = state["doctor_turns"] + 1
    structured = ctx.structured("doctor", "doctor")
    messages = [
        _doctor_system(ctx, structured, number),
        {"role": "user", "content": prompts.doctor_turn(
            ctx.scenario.protocol.prompt_set(), _heard(ctx, state, "doctor"), number,
            max_turns)},
    ]
    turn_context = {"doctor_turn": number, "max_turns": max_turns}
    reply, action = await _doctor_answer(ctx, state["turn"], messages, structured, turn_context,
                                         last_turn=number >= max_turns)
    spent = {"turn": state["turn"] + 1, "doctor_turns": number, "action_raw": reply.text}
    if action.unparsed is not None:
        ctx.decided(None, kind="doctor_action", turn=state["turn"], agent="doctor",
                    phase=f"turn{number}", raw=reply.text, parse_error=action.unparsed)
        return {**spent, "action": "unparsed", "action_text": "", "diagnosis": None}
    text = action.text
    if action.kind == "diagnose":
        text = await _reflect_diagnosis(ctx, [*messages, {"role": "assistant", "content":
                                                         reply.text}], text, state["turn"],
                                        turn_context)
    ctx.decided(DoctorActionDecision(action=action.kind, text=text, ambiguous=action.ambiguous),
                turn=state["turn"], agent="doctor", phase=f"turn{number}", raw=reply.text,
                parsed_by=action.parsed_by)
    spoken = {"ask": text, "test": f"REQUEST TEST: {text}",
              "diagnose": f"DIAGNOSIS READY: {text}"}[action.kind]
    visible = ["doctor", "patient"] if action.kind == "ask" else ["doctor"]
    message = _say(ctx, state, "doctor", spoken, visible)
    return {**spent, "dialogue": [message], "action": action.kind, "action_text": text,
            "diagnosis": text if action.kind == "diagnose" else None,
            "tests": state["tests"] + (action.kind == "test")}


async def _doctor_answer(ctx: ConversationContext, turn: int, messages: list[dict[str, str]],
                         structured: bool, context: dict[str, Any],
                         last_turn: bool) -> tuple[Any, DoctorAction]:
    """The doctor's reply and how it reads; an unparsed reply is asked again (a new attempt
    seed) up to DECISION_REASKS times, like a decision."""
    for attempt in range(DECISION_REASKS + 1):
        reply = await ctx.call(agent="doctor", role="doctor", purpose="doctor",
                               messages=messages, turn=turn,
                               schema=prompts.doctor_schema() if structured else None,
                               context={**context, "reask": attempt} if attempt else context,
                               attempt=attempt)
        action = parse_doctor_turn(reply.text, last_turn=last_turn)
        if action.unparsed is None:
            break
    return reply, action


async def _reflect_diagnosis(ctx: ConversationContext, messages: list[dict[str, str]],
                             diagnosis: str, turn: int, context: dict[str, Any]) -> str:
    """The diagnosis after the arm's mitigations' ``reflect_diagnosis`` hooks (e.g.
    self_reflection's) have revised it; the doctor's budget is not charged. Each change is
    logged like a revised decision (hook after_decision)."""
    hook = ctx.hook(turn=turn, agent="doctor", role="doctor")
    for mitigation in ctx.mitigations:
        revised = await mitigation.reflect_diagnosis(hook, messages, diagnosis, turn=turn,
                                                     context=context)
        if revised and revised != diagnosis:
            ctx.applied(mitigation, "after_decision", turn, "doctor", phase="diagnosis",
                        before=diagnosis, after=revised)
            diagnosis = revised
    return diagnosis


async def patient_node(state: ClinicalState, runtime: Runtime[ConversationContext]) -> dict:
    """The patient answers the doctor's question from its notes."""
    ctx = runtime.context
    messages = [
        _patient_system(ctx),
        {"role": "user", "content": prompts.patient_turn(
            ctx.scenario.protocol.prompt_set(), _heard(ctx, state, "patient"))},
    ]
    reply = await ctx.call(agent="patient", role="patient", purpose="patient", messages=messages,
                           turn=state["turn"])
    message = _say(ctx, state, "patient", reply.text.strip(), ["doctor", "patient"])
    return {"dialogue": [message], "turn": state["turn"] + 1}


async def probe_node(state: ClinicalState, runtime: Runtime[ConversationContext]) -> dict:
    """The doctor's private leading diagnosis after an answer; changes nothing in the state."""
    ctx = runtime.context
    case, max_turns = ctx.scenario.case, ctx.job.max_turns or 20
    structured = ctx.structured("doctor", "doctor")
    messages = [
        _doctor_system(ctx, structured, state["doctor_turns"] + 1),
        {"role": "user", "content": prompts.probe_prompt(
            ctx.scenario.protocol.prompt_set(), _heard(ctx, state, "doctor"))},
    ]
    reply = await ctx.call(agent="doctor", role="doctor", purpose="diagnosis_probe",
                           messages=messages, turn=state["turn"] - 1,
                           schema=prompts.probe_schema() if structured else None,
                           context={"doctor_turn": state["doctor_turns"],
                                    "max_turns": max_turns})
    found = json_objects(reply.text)
    diagnosis = str(found[0].get("diagnosis", "")) if found and isinstance(found[0], dict) \
        else reply.text.strip()
    ctx.decided(DiagnosisProbeDecision(diagnosis=diagnosis,
                                       normalised=same_diagnosis(case.diagnosis, diagnosis)),
                turn=state["turn"] - 1, agent="doctor", phase="probe",
                round_number=state["doctor_turns"], raw=reply.text,
                parsed_by="json" if found else "text")
    return {}


async def moderator_node(state: ClinicalState, runtime: Runtime[ConversationContext]) -> dict:
    """The moderator's verdict on the diagnosis, with the normaliser's beside it."""
    ctx = runtime.context
    truth, diagnosis = ctx.scenario.case.diagnosis, state["diagnosis"] or ""
    strict = ctx.scenario.protocol.moderator == "strict"
    # The published moderator answers in text: a JSON answer could never be exactly "yes".
    structured = not strict and ctx.structured("moderator", "moderator")
    reply = await ctx.call(agent="moderator", role="moderator", purpose="moderator",
                           messages=prompts.moderator_prompt(
                               ctx.scenario.protocol.prompt_set(), truth, diagnosis,
                               state.get("action_raw") or ""), turn=state["turn"],
                           schema=prompts.moderator_schema() if structured else None,
                           context={"diagnosis": diagnosis})
    verdict = strict_verdict(reply.text) if strict else parse_verdict(reply.text)
    ctx.decided(DiagnosisCheckDecision(
        diagnosis=diagnosis, truth=truth,
        moderator={True: "yes", False: "no", None: "unparsed"}[verdict],
        normalised=same_diagnosis(truth, diagnosis)),
        turn=state["turn"], agent="moderator", phase="diagnosis", raw=reply.text,
        parsed_by="strict" if strict else "moderator")
    return {"turn": state["turn"] + 1}


async def perception_node(state: ClinicalState, runtime: Runtime[ConversationContext]) -> dict:
    """The patient's ratings of the consultation (1–10 each), as structured output."""
    ctx = runtime.context
    if state.get("diagnosis") is None:
        ctx.decided(DiagnosisCheckDecision(diagnosis="", truth=ctx.scenario.case.diagnosis,
                                           moderator="no diagnosis", normalised=None),
                    turn=state["turn"], agent="moderator", phase="diagnosis", raw="",
                    parsed_by="budget")
    structured, texts = ctx.structured("patient", "patient"), ctx.scenario.protocol.prompt_set()
    messages = [
        _patient_system(ctx),
        {"role": "user", "content": prompts.perception_prompt(
            texts, _heard(ctx, state, "patient")["dialogue"], state.get("diagnosis"))},
    ]
    reply = await ctx.call(agent="patient", role="patient", purpose="perception",
                           messages=messages, turn=state["turn"],
                           schema=prompts.perception_schema() if structured else None)
    parsed = parse_perception(reply.text)
    ctx.decided(PerceptionDecision.model_validate(parsed[0]) if parsed else None,
                kind="perception", turn=state["turn"], agent="patient", phase="after",
                raw=reply.text, parsed_by=parsed[1] if parsed else None,
                parse_error=None if parsed else "no three ratings from 1 to 10")
    return {"turn": state["turn"] + 1}


async def _clinical_entry(state: ClinicalState) -> str:  # the doctor, or a fork's entry
    return state.get("entry") or "doctor"


async def _after_doctor(state: ClinicalState) -> str:
    if state["action"] == "diagnose":
        return "moderator"
    if state["doctor_turns"] >= state["max_turns"]:
        return "perception"  # budget spent without a diagnosis
    return {"ask": "patient", "test": "measurement"}.get(state["action"], "doctor")


async def _after_answer(state: ClinicalState) -> str:
    if state["doctor_turns"] >= state["max_turns"]:
        return "perception"
    return "probe" if state.get("probes") else "doctor"


@lru_cache(maxsize=1)
def compiled_graph() -> Any:
    """Build, validate and compile the consultation graph."""
    builder = StateGraph(ClinicalState, context_schema=ConversationContext)
    for name, node in (("doctor", doctor_node), ("patient", patient_node),
                       ("measurement", measurement_node), ("moderator", moderator_node),
                       ("perception", perception_node)):
        builder.add_node(name, node)
    builder.add_conditional_edges(START, _clinical_entry, ["doctor", "patient", "measurement"])
    builder.add_conditional_edges("doctor", _after_doctor,
                                  ["moderator", "perception", "patient", "measurement", "doctor"])
    builder.add_node("probe", probe_node)
    builder.add_conditional_edges("patient", _after_answer, ["perception", "probe", "doctor"])
    builder.add_conditional_edges("measurement", _after_answer, ["perception", "probe", "doctor"])
    builder.add_edge("probe", "doctor")
    builder.add_edge("moderator", "perception")
    builder.add_edge("perception", END)
    return builder.compile()


@protocol("clinical")
class Clinical(ConversationProtocol):
    """A doctor/patient consultation with a measurement agent, a moderator and the patient's
    perception afterwards; bias conditions inject instructions into the doctor or patient."""

    settings = ClinicalProtocol
    roles = ("doctor", "patient", "moderator", "measurement")
    options = frozenset({"bias", "max_turns", "bias_catalogue"})
    default_judges = ("clinical",)

    def model_roles(self, scenario: Scenario) -> set[str]:
        """Doctor, patient, moderator, and the measurement agent unless it is the records
        clerk."""
        roles = set(self.roles)
        if scenario.protocol.measurement == "records":
            roles.discard("measurement")
        return roles

    def job_fields(self, scenario: Scenario, options: Any) -> dict[str, Any]:
        """The doctor's turn budget (``--max-turns`` over the file's) and sampling (the run's,
        else the settings', e.g. a preset's published values)."""
        return {"max_turns": options.max_turns or scenario.protocol.max_turns,
                **sampling(scenario.protocol, options)}

    def conditions(self, scenario: Scenario, options: Any) -> list[str]:
        """The unbiased consultation, then each requested bias (``--bias`` over the file's)."""
        return ["none", *(options.biases or scenario.protocol.biases)]

    def graph(self, scenario: Scenario, job: Any = None) -> Any:
        """The consultation graph (the same for every case)."""
        return compiled_graph()

    def initial_state(self, ctx: ConversationContext) -> dict[str, Any]:
        """An empty dialogue and the doctor's full budget."""
        return {"dialogue": [], "turn": 0, "doctor_turns": 0, "action": "", "action_text": "",
                "action_raw": "", "diagnosis": None, "tests": 0,
                "max_turns": ctx.job.max_turns or 20, "probes": ctx.job.probes}

    def recursion_limit(self, ctx: ConversationContext) -> int:
        """Four steps per doctor turn at most (doctor, answer, probe, ...), with room."""
        return 10 + 4 * (ctx.job.max_turns or 20)

    def speaker_name(self, scenario: Scenario, agent: str) -> str:
        """Listeners read the party, not the persona's name."""
        return SPEAKERS.get(agent, agent)

    def state_at(self, events: list[EventBase], job: Any, scenario: Scenario,
                 from_turn: int) -> dict[str, Any]:
        """Any turn on which the doctor, the patient or the measurement agent spoke; the
        continuation starts with that speaker and the budget counts the turns already used."""
        spoken = {e.turn: e for e in events if e.type == "message"}
        if from_turn not in spoken:
            last = max(spoken, default=-1)
            raise InputError(f"fork at a turn on which the doctor, patient or measurement "
                             f"agent spoke (0..{last}); turn {from_turn} is not one",
                             source="--from-turn")
        kept = events_before(events, from_turn)
        dialogue = [Utterance(agent=e.agent, speaker=e.speaker, content=e.content,
                              phase=e.phase, round=e.round, audience=list(e.visible_to or []))
                    for e in kept if e.type == "message"]
        turns = [e for e in kept if e.type == "decision" and e.kind == "doctor_action"]
        actions = [e for e in turns if e.value]
        last = actions[-1] if actions else None
        return {"dialogue": dialogue, "turn": from_turn, "doctor_turns": len(turns),
                "tests": sum(e.value["action"] == "test" for e in actions),
                "action": last.value["action"] if last else "",
                "action_text": last.value["text"] if last else "",
                "action_raw": (last.raw or "") if last else "",
                "entry": spoken[from_turn].agent}

    def topology(self, scenario: Scenario) -> Any:
        """Doctor and patient hear each other; the measurement agent answers the doctor."""
        import networkx as nx

        return nx.DiGraph([("doctor", "patient"), ("patient", "doctor"),
                           ("measurement", "doctor")])


async def run_clinical(ctx: ConversationContext) -> dict[str, Any]:
    """Run one consultation; returns the final graph state."""
    return await Clinical().run(ctx)
