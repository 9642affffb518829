"""Self-reflection (Borah & Mihalcea 2024) and its in-context examples (the ``ice`` arm part).

``self_reflection``
    Right after an agent's first, private assignment (phase ``first``), the agent is given a
    definition of implicit bias in task assignment and asked to critique its own assignment
    ("Bias: yes/no" and why; one ``reflection`` model call, free text), then to assign again,
    changing the assignment if it found bias (one ``decision`` call with the assignment schema
    when the model supports it). The new decision replaces the first one; the runtime logs the
    change as ``mitigation_applied`` (hook ``after_decision``, before/after), and every
    reflection — changed or not — is logged with hook ``reflection`` and the verdict read from
    the critique (``bias_found``: yes / no / unclear), so how often agents find bias in
    themselves can be counted from the log.

    *No-interaction setting.* The lone assigner ("single") makes one decision only; in the
    published design its reflection comes *before* the answer, so here it is an addition to its
    system prompt (the same definition, and the examples with ``ice``) and no extra calls.

    *Clinical.* ``reflect_diagnosis`` gives the doctor a reflection turn before its diagnosis
    becomes final: a critique (purpose ``reflection``) then a revised diagnosis (purpose
    ``doctor``, the doctor's action schema). The consultation graph calls it; it uses the revised
    diagnosis and logs the change. The reflection costs the doctor none of its turn budget.

``ice`` (in-context examples)
    Not a mitigation of its own: it only adds worked examples (a situation, an assignment, the
    verdict and the reason; ``mitigations/ice/examples.yaml`` or ``file=...``) to the reflection
    prompts of ``self_reflection`` in the same arm. Users type the arm ``self_reflection+ice``;
    ``self_reflection`` looks for an ``ice`` member in ``ctx.mitigations`` (order does not
    matter). An arm with ``ice`` but no ``self_reflection`` fails loudly rather than run an arm
    that silently equals ``none``. The examples are about task assignment, so they reach the
    discussion agents and the lone assigner, never the doctor's diagnostic reflection.

Wording lives in ``mitigations/self_reflection.yaml`` (``file=...`` to replace it).

Notes: the reflection calls carry the turn of the decision they follow and a fixed attempt offset,
so their seeds differ from the first decision's and a run stays reproducible. ``after_decision``
is not given the turn, so the turn of a first decision is recomputed from the speaking order
exactly as the discussion graph numbers it. With the scripted test model the re-decision is a
fresh planted draw: scripted runs check the mechanics, never whether reflection reduces bias.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from agentsim.agents.prompts import answer_format
from agentsim.core.decisions import stored_value
from agentsim.errors import DecisionParseError, InputError
from agentsim.mitigations.base import Mitigation, mitigation
from agentsim.orchestrator.runtime import assignment_spec

# Attempt number of reflection re-asks. Call seeds derive from (turn, agent, purpose, attempt);
# the first decision used attempt 0 (or 1 after an unparsed answer), so an offset keeps the
# re-decision from reusing the first decision's seed (the scripted model would repeat itself).
REFLECTION_ATTEMPT = 100
REASKS = 1
VERDICT = re.compile(r"\bbias\s*(?:found|present)?\s*[:\-=]?\s*\**\s*(yes|no)\b", re.IGNORECASE)
TEXT_KEYS = ("definition", "critique", "revise", "before_answer", "examples_intro",
             "diagnosis_critique", "diagnosis_revise")


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
    """Replace ``{name}`` placeholders (plain replacement: the texts may hold JSON braces)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template.strip()


def verdict(critique: str) -> str:
    """'yes' / 'no' from the critique's "Bias: yes|no" opening, else 'unclear'."""
    match = VERDICT.search(critique)
    return match[1].lower() if match else "unclear"


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
    """Agents critique their first assignment for implicit bias and may re-assign."""

    steps = frozenset({"reflection"})  # every critique is logged, changed or not

    def __init__(self, file: str | None = None, **options: Any) -> None:
        super().__init__(file=file, **options)
        self.text = {k: str(v) for k, v in
                     load_mapping("self_reflection.yaml", file, TEXT_KEYS).items()}

    def _examples(self, ctx: Any) -> str:
        """The ice examples block (ending in a blank line) when the arm has ice, else ''."""
        for member in ctx.mitigations:
            if isinstance(member, InContextExamples):
                return f"{self.text['examples_intro'].strip()}\n\n{member.render()}\n\n"
        return ""

    def _prompt(self, ctx: Any, key: str, **values: str) -> str:
        return fill(self.text[key], definition=self.text["definition"].strip(),
                    examples=self._examples(ctx), **values)

    def system_prompt(self, ctx: Any, agent: str, prompt: str) -> str:
        """No-interaction: the reflection instruction before the lone decision."""
        if agent != "single":
            return prompt
        return f"{prompt}\n\n{self._prompt(ctx, 'before_answer')}"

    async def after_decision(self, ctx: Any, agent: str, phase: str, decision: dict[str, str],
                             messages: list[dict[str, str]]) -> dict[str, str] | None:
        """After a first decision: critique, then re-decide; the new decision (or None)."""
        if phase != "first":
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
        revised, error = None, ""
        for attempt in range(REASKS + 1):
            reply = await ctx.call(agent=agent, role=role, purpose="decision",
                                   messages=revise, turn=turn, schema=schema,
                                   context={**context, "reflection": True},
                                   attempt=REFLECTION_ATTEMPT + attempt)
            try:
                revised = stored_value(spec.parse(reply.text)[0])
                break
            except DecisionParseError as parse_error:
                error = str(parse_error)
        # Logged whether or not the decision changed: "found no bias" is a result too. An
        # unparsable re-decision keeps the first decision (never drops it).
        detail: dict[str, Any] = {"phase": phase, "bias_found": verdict(critique.text),
                                  "changed": revised is not None and revised != decision}
        if revised is None:
            detail["parse_error"] = error
        ctx.applied(self, "reflection", turn, agent, **detail)
        return revised

    async def reflect_diagnosis(self, ctx: Any, messages: list[dict[str, str]], diagnosis: str,
                                *, turn: int, context: dict[str, Any]) -> str | None:
        """Clinical: critique the doctor's diagnosis, then ask for it again; the revised
        diagnosis, or None to keep it (also when the answer is not a diagnosis).

        ``messages`` are the doctor's prompt followed by its diagnosing answer; ``turn`` and
        ``context`` are those of that doctor turn (the context feeds the scripted model)."""
        from agentsim.agents.clinical_parsing import parse_doctor_turn
        from agentsim.agents.clinical_prompts import doctor_schema

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
