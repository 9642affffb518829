"""Self-reflection (Borah & Mihalcea 2024) and its in-context examples (the ``ice`` arm part).

``self_reflection`` — measured as published: the decision an agent gives before reflecting stays
its ``first`` decision; the decision after reflecting is logged as a decision of its own phase,
``reflected`` (round 0, the same turn), and the conversation continues from it. The judge
``assignment_bias`` reports ``bias_reflected`` and the self-correction rate beside first and last
bias; escalation stays last − first (the pre-reflection decision). Two placements:

``placement: private`` (default)
    Right after an agent's first, private assignment the agent is given a definition of implicit
    bias and asked to critique its own assignment ("Bias: yes/no" and why; one ``reflection``
    call, free text), then to assign again (one ``decision`` call, context phase ``reflected``,
    with the assignment schema when the model supports it). Nobody else hears the reflection.
    The change, when there is one, is also logged as ``mitigation_applied`` (hook
    ``after_decision``, before/after).

``placement: shared`` (the published flow, ``scenes_discussion_selfreflection.py`` 125-137)
    Discussion only. After **every** agent's first answer, one pass in speaking order: each agent
    reads everyone's first answers and the scene, critiques its own and gives a new assignment
    (one ``reflection`` call, context phase ``reflected``), and its answer is **said in the
    shared conversation** (a ``message`` of phase ``reflection``), so the rounds and the final
    decisions hear it. The new assignment is parsed from the answer ("New Task Assignment: Task:
    <n>: Person assigned: <name>"); an answer it cannot read is logged unparsed and the agent
    keeps its first decision. The call reuses the agent's system prompt of its first decision.
    The protocol runs it through ``ConversationContext.after_first_decisions``; the lone
    assigner of no-interaction gets no reflection under this placement (there is no
    conversation to share it in).

Every reflection — changed or not — is logged with hook ``reflection`` (``placement``,
``bias_found``: yes / no / unclear, read from "Bias: yes|no" or the published "present|absent";
``changed``), so how often agents find bias in themselves can be counted from the log.

Wording lives in ``mitigations/self_reflection.yaml`` (this project's own words; key ``shared``
for the shared placement). ``file=...`` replaces it: a path, or the name of a shipped asset —
``file=self_reflection_borah2024.yaml`` is the published reflection prompt verbatim (with
``placement=shared``).

*No-interaction setting* (private). The lone assigner ("single") makes one decision only; in the
published design its reflection comes *before* the answer, so here it is an addition to its
system prompt (the same definition, and the examples with ``ice``) and no extra calls.

*Clinical* (private). ``reflect_diagnosis`` gives the doctor a reflection turn before its
diagnosis becomes final: a critique (purpose ``reflection``) then a revised diagnosis (purpose
``doctor``, the doctor's action schema). The consultation graph calls it; it uses the revised
diagnosis and logs the change. The reflection costs the doctor none of its turn budget.

``ice`` (in-context examples)
    Not a mitigation of its own: it only adds worked examples (a situation, an assignment, the
    verdict and the reason; ``mitigations/ice/examples.yaml`` or ``file=...``) to the reflection
    prompts of ``self_reflection`` in the same arm (where the wording has ``{examples}``). Users
    type the arm ``self_reflection+ice``; an arm with ``ice`` but no ``self_reflection`` fails
    loudly rather than run an arm that silently equals ``none``. The examples are about task
    assignment, so they never reach the doctor's diagnostic reflection.

Notes: the reflection calls carry the turn of the decision they follow (private) or a turn of
their own after the first decisions (shared) and a fixed attempt offset, so their seeds differ
from the first decision's and a run stays reproducible. With the scripted test model the
re-decision is a fresh planted draw (the ``reflected`` knob sets its rate): scripted runs check
the mechanics, never whether reflection reduces bias.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from agentsim import resources
from agentsim.agents.prompts import answer_format, scene
from agentsim.errors import DecisionParseError, InputError
from agentsim.mitigations.base import Mitigation, mitigation
from agentsim.orchestrator.kernel import say
from agentsim.orchestrator.runtime import Revision, SharedTurns, assignment_spec

# Attempt number of reflection re-asks. Call seeds derive from (turn, agent, purpose, attempt);
# the first decision used attempt 0 (or 1 after an unparsed answer), so an offset keeps the
# re-decision from reusing the first decision's seed (the scripted model would repeat itself).
REFLECTION_ATTEMPT = 100
REASKS = 1
VERDICT = re.compile(r"\bbias\s*(?:found|present)?\s*[:\-=]?\s*\**\s*(yes|no)\b", re.IGNORECASE)
# The published reflection's "Implicit Bias in your previous assignment: <present/absent ...>".
PUBLISHED_VERDICT = re.compile(r"\bimplicit\s+bias\b[^:\n]*:\s*\**\s*(present|absent)\b",
                               re.IGNORECASE)
TEXT_KEYS = ("definition", "critique", "revise", "before_answer", "examples_intro",
             "diagnosis_critique", "diagnosis_revise")
SHARED_KEYS = ("shared",)
REFLECTED = "reflected"  # the phase of a decision given after reflecting


def load_mapping(name: str, override: str | None, keys: tuple[str, ...]) -> dict[str, Any]:
    """A YAML mitigation asset as a mapping that has every key in ``keys``."""
    # Imported here: builtin imports this module at its end to register it.
    from agentsim.mitigations.builtin import read_asset

    source = override or name
    try:
        data = yaml.safe_load(read_asset(name, override))
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML: {error}", source=source) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping of texts", source=source)
    missing = [key for key in keys if key not in data]
    if missing:
        raise InputError(f"missing key(s): {', '.join(missing)}", source=source)
    return data


def fill(template: str, **values: str) -> str:
    """Replace ``{name}`` placeholders (plain replacement: the texts may hold JSON braces). One
    pass over the template: a value that contains a placeholder (a model's answer quoted in the
    shared reflection) is inserted as it is."""
    if not values:
        return template.strip()
    placeholders = re.compile("|".join(re.escape("{" + key + "}") for key in values))
    return placeholders.sub(lambda found: values[found[0][1:-1]], template).strip()


def verdict(critique: str) -> str:
    """'yes' / 'no' from the critique's "Bias: yes|no" (or the published "Implicit Bias ...:
    present|absent"), else 'unclear'."""
    match = VERDICT.search(critique)
    if match:
        return match[1].lower()
    published = PUBLISHED_VERDICT.search(critique)
    if published:
        return "yes" if published[1].lower() == "present" else "no"
    return "unclear"


def reflection_texts(file: str | None, keys: tuple[str, ...]) -> dict[str, str]:
    """The self-reflection wording: the shipped ``self_reflection.yaml``, the file ``file``, or
    the shipped asset ``file`` names when no such file exists (``self_reflection_borah2024.yaml``)."""
    name, override = "self_reflection.yaml", file
    if file and not Path(file).exists() and "/" not in file and "\\" not in file \
            and resources.asset("agentsim.mitigations", "assets", file).is_file():
        name, override = file, None
    return {k: str(v) for k, v in load_mapping(name, override, keys).items()}


def first_answers(transcript: list[dict[str, Any]]) -> str:
    """Everyone's first answers as the published reflection quotes them: the Python list of
    ``"<name> Agent: <answer>\\n"`` (scenes_discussion_selfreflection.py 123)."""
    return str([f"{u['speaker']} Agent: {u['content']}\n" for u in transcript
                if u["phase"] == "first"])


def shown_assignment(decision: dict[str, str], ctx: Any, structured: bool) -> str:
    """The decision as the agent's own answer, in the format it was asked for."""
    names = {t.id: ctx.scenario.persona(decision[t.id]).name for t in ctx.scenario.tasks}
    if structured:
        return json.dumps({"assignments": names})
    return "\n".join(f"Task {i}: {task_id}, Person assigned: {name}"
                     for i, (task_id, name) in enumerate(names.items(), 1))


@mitigation("ice")
class InContextExamples(Mitigation):
    """In-context examples for self_reflection's prompts; use as self_reflection+ice."""

    def __init__(self, file: str | None = None, **options: Any) -> None:
        super().__init__(file=file, **options)
        data = load_mapping("ice/examples.yaml", file, ("examples",))
        examples = data["examples"]
        fields = ("situation", "assignment", "bias", "reason")
        if not isinstance(examples, list) or not all(
                isinstance(e, dict) and all(f in e for f in fields) for e in examples):
            raise InputError(f"examples: a list of mappings with {', '.join(fields)}",
                             source=file or "ice/examples.yaml")
        verdicts = {self._bias(e["bias"]) for e in examples}
        if verdicts != {"yes", "no"}:
            # One-sided examples would teach the model that the answer is always the same.
            raise InputError("examples need at least one with bias: yes and one with bias: no",
                             source=file or "ice/examples.yaml")
        self.examples = examples

    @staticmethod
    def _bias(value: Any) -> str:
        # YAML reads a bare yes/no as a boolean.
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value).strip().lower()

    def render(self) -> str:
        """The examples as numbered plain text blocks."""
        blocks = []
        for number, example in enumerate(self.examples, 1):
            blocks.append(
                f"Example {number}.\nSituation: {' '.join(str(example['situation']).split())}\n"
                f"Assignment: {' '.join(str(example['assignment']).split())}\n"
                f"Bias: {self._bias(example['bias'])}. "
                f"{' '.join(str(example['reason']).split())}")
        return "\n\n".join(blocks)

    def check_arm(self, arm: list[Mitigation]) -> None:
        """The examples serve a reflection: an arm without self_reflection is an error."""
        if not any(isinstance(m, SelfReflection) for m in arm):
            raise InputError("the ice mitigation only adds examples to self_reflection: use the "
                             "arm self_reflection+ice", source="--mitigation")


@mitigation("self_reflection")
class SelfReflection(Mitigation):
    """Agents critique their first assignment for implicit bias and assign again (privately, or
    said in the shared conversation as published)."""

    steps = frozenset({"reflection"})  # every critique is logged, changed or not

    def __init__(self, file: str | None = None,
                 placement: Literal["private", "shared"] = "private", **options: Any) -> None:
        super().__init__(file=file, placement=placement, **options)
        self.placement = placement
        self.text = reflection_texts(file, TEXT_KEYS if placement == "private" else SHARED_KEYS)
        if placement == "shared":  # it speaks in a discussion; the private one goes everywhere
            self.protocols = frozenset({"discussion"})

    @property
    def revision_phase(self) -> str | None:
        """The phase the runtime logs this mitigation's re-decision as (private placement)."""
        return REFLECTED if self.placement == "private" else None

    def _examples(self, ctx: Any) -> str:
        """The ice examples block (ending in a blank line) when the arm has ice, else ''."""
        for member in ctx.mitigations:
            if isinstance(member, InContextExamples):
                return f"{self.text.get('examples_intro', '').strip()}\n\n{member.render()}\n\n"
        return ""

    def _prompt(self, ctx: Any, key: str, **values: str) -> str:
        return fill(self.text[key], definition=self.text.get("definition", "").strip(),
                    examples=self._examples(ctx), **values)

    def system_prompt(self, ctx: Any, agent: str, prompt: str) -> str:
        """No-interaction (private placement): the reflection instruction before the lone
        decision."""
        if agent != "single" or self.placement != "private":
            return prompt
        return f"{prompt}\n\n{self._prompt(ctx, 'before_answer')}"

    async def after_decision(self, ctx: Any, agent: str, phase: str, decision: dict[str, str],
                             messages: list[dict[str, str]]) -> Revision | None:
        """Private placement, after a first decision: critique, then re-decide; the
        re-decision as a ``reflected`` :class:`Revision` (unparsed: it keeps the first)."""
        if phase != "first" or self.placement != "private":
            return None
        # The hook knows the decision's turn and the decider's model role (a setup's
        # model_role), so the reflection speaks on that turn with that model.
        turn, role = ctx.turn, ctx.role or "agent"
        structured = ctx.structured(agent, role)
        context = {"phase": phase, "agent": agent, "round": 0, "current": decision}
        asked = [*messages,
                 {"role": "assistant", "content": shown_assignment(decision, ctx, structured)},
                 {"role": "user", "content": self._prompt(ctx, "critique")}]
        critique = await ctx.call(agent=agent, role=role, purpose="reflection",
                                  messages=asked, turn=turn, context=context)
        revise = [*asked, {"role": "assistant", "content": critique.text},
                  {"role": "user", "content": self._prompt(
                      ctx, "revise", format=answer_format(ctx.scenario, structured))}]
        spec = assignment_spec(ctx.scenario)  # the decision it revises: same schema, parser
        schema = spec.schema if structured else None
        revision = Revision(REFLECTED, None, "")
        for attempt in range(REASKS + 1):
            reply = await ctx.call(agent=agent, role=role, purpose="decision",
                                   messages=revise, turn=turn, schema=schema,
                                   context={**context, "phase": REFLECTED, "reflection": True},
                                   attempt=REFLECTION_ATTEMPT + attempt)
            try:
                typed, how = spec.parse(reply.text)
            except DecisionParseError as parse_error:
                revision = Revision(REFLECTED, None, reply.text, parse_error=str(parse_error))
                continue
            revision = Revision(REFLECTED, typed, reply.text, parsed_by=how)
            break
        # Logged whether or not the decision changed: "found no bias" is a result too. An
        # unparsable re-decision keeps the first decision (never drops it).
        revised = None if revision.typed is None else revision.typed.assignments
        detail: dict[str, Any] = {"phase": phase, "placement": "private",
                                  "bias_found": verdict(critique.text),
                                  "changed": revised is not None and revised != decision}
        if revised is None:
            detail["parse_error"] = revision.parse_error
        ctx.applied(self, "reflection", turn, agent, **detail)
        return revision

    async def after_first_decisions(self, ctx: Any, transcript: list[dict[str, Any]],
                                    current: dict[str, dict[str, str]]) -> SharedTurns | None:
        """Shared placement: every agent, in the order of the first answers, reflects on
        everyone's first answers; each reflection is said to all, its assignment logged as the
        agent's ``reflected`` decision. Turns from ``ctx.turn`` on, one per agent."""
        if self.placement != "shared":
            return None
        conversation, spec = ctx.conversation, assignment_spec(ctx.scenario)
        answers, turn = first_answers(transcript), ctx.turn
        said, holding = [], {}
        for first in [u for u in transcript if u["phase"] == "first"]:
            agent = first["agent"]
            asked = conversation.decision_prompts.get((agent, "first"), [])
            system = [m for m in asked[:1] if m["role"] == "system"]
            prompt = self._prompt(ctx, "shared", first_answers=answers, scene=scene(ctx.scenario),
                                  format=answer_format(ctx.scenario, False))
            reply = await ctx.call(agent=agent, role="agent", purpose="reflection", turn=turn,
                                   messages=[*system, {"role": "user", "content": prompt}],
                                   context={"phase": REFLECTED, "agent": agent, "round": 0,
                                            "current": current.get(agent),
                                            "placement": "shared"})
            typed, how, error = None, None, None
            try:
                typed, how = spec.parse(reply.text)
            except DecisionParseError as parse_error:
                error = str(parse_error)
            value = ctx.decided(typed, kind=spec.kind, turn=turn, agent=agent, phase=REFLECTED,
                                round_number=0, parsed_by=how, raw=reply.text, parse_error=error)
            detail: dict[str, Any] = {"phase": "first", "placement": "shared",
                                      "bias_found": verdict(reply.text),
                                      "changed": value is not None and value != current.get(agent)}
            if error is not None:
                detail["parse_error"] = error
            ctx.applied(self, "reflection", turn, agent, **detail)
            # Said as the model wrote it, as the published script appends it to the shared list.
            said.append(say(conversation, agent=agent, content=reply.text, turn=turn,
                            phase="reflection", round_number=0))
            if value is not None:
                holding[agent] = value
            turn += 1
        return SharedTurns(said=said, decisions=holding, turn=turn)

    async def reflect_diagnosis(self, ctx: Any, messages: list[dict[str, str]], diagnosis: str,
                                *, turn: int, context: dict[str, Any]) -> str | None:
        """Clinical: critique the doctor's diagnosis, then ask for it again; the revised
        diagnosis, or None to keep it (also when the answer is not a diagnosis).

        ``messages`` are the doctor's prompt followed by its diagnosing answer; ``turn`` and
        ``context`` are those of that doctor turn (the context feeds the scripted model)."""
        from agentsim.agents.clinical_parsing import parse_doctor_turn
        from agentsim.agents.clinical_prompts import doctor_schema

        if self.placement != "private":
            return None

        structured = ctx.structured("doctor", "doctor")
        # ``messages`` already end with the doctor's own diagnosing answer.
        asked = [*messages,
                 {"role": "user", "content": self._prompt(ctx, "diagnosis_critique")}]
        critique = await ctx.call(agent="doctor", role="doctor", purpose="reflection",
                                  messages=asked, turn=turn,
                                  context={**context, "diagnosis": diagnosis})
        how = ('Answer only with JSON {"action": "diagnose", "text": "<your diagnosis>"}.'
               if structured else 'Write "DIAGNOSIS READY: <your diagnosis>".')
        revise = [*asked, {"role": "assistant", "content": critique.text},
                  {"role": "user", "content": self._prompt(ctx, "diagnosis_revise", format=how)}]
        # Purpose 'doctor': it is a doctor turn in every respect but the budget (the scripted
        # model answers it as its diagnosing turn).
        reply = await ctx.call(agent="doctor", role="doctor", purpose="doctor", messages=revise,
                               turn=turn, schema=doctor_schema() if structured else None,
                               context=context, attempt=REFLECTION_ATTEMPT)
        action = parse_doctor_turn(reply.text, last_turn=True)
        revised = action.text if action.kind == "diagnose" and action.text else None
        detail: dict[str, Any] = {"phase": "diagnosis", "bias_found": verdict(critique.text),
                                  "changed": revised is not None and revised != diagnosis}
        if revised is None:
            detail["parse_error"] = f"the answer was a {action.kind!r} turn, not a diagnosis"
        ctx.applied(self, "reflection", turn, "doctor", **detail)
        return revised
