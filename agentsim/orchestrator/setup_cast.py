"""Who is who in a custom setup: roles, speakers, listeners and each agent's prompt.

:class:`Cast` is derived once per scenario (variant) from its ``setup`` protocol. It is the one
place that decides what an agent may read: :meth:`Cast.listeners` gives a message's audience from
the topology, and :meth:`Cast.prompt` shows an agent only the messages whose audience names it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from agentsim.agents import prompts
from agentsim.core.jobs import derive_seed
from agentsim.orchestrator.kernel import heard
from agentsim.orchestrator.setup_decisions import describe
from agentsim.scenario.schema import Scenario, render_role_prompt
from agentsim.scenario.setup_schema import DecisionPoint, SetupProtocol


@dataclass(frozen=True)
class Cast:
    """The roles of a setup resolved against one scenario's personas."""

    scenario: Scenario
    setup: SetupProtocol
    role_of: dict[str, str]  # persona id → role id (personas playing a role)
    speakers: tuple[str, ...]  # speaking slots ('persona' or 'persona>addressee'), base order
    audience: dict[str, tuple[str, ...]]  # persona id → persona ids hearing it (itself first)

    @property
    def everyone(self) -> tuple[str, ...]:
        """Every persona that plays a role."""
        return tuple(self.role_of)

    @property
    def texts(self) -> Any:
        """The setup's prompt set (agentsim/scenario/prompts/setup.yaml, with the scenario's
        or ``--prompts``' texts over it)."""
        return self.setup.prompt_set()

    @property
    def names(self) -> dict[str, str]:
        """Persona id → display name."""
        return {p.id: p.name for p in self.scenario.personas}

    def listeners(self, agent: str, to: str | None = None) -> list[str]:
        """Who hears a message from ``agent`` (the speaker itself included); a turn addressed
        ``to`` a role or persona reaches only those of its listeners."""
        if to is None:
            return list(self.audience[agent])
        targets = set(self.setup.roles[to].played_by) if to in self.setup.roles else {to}
        return [agent, *(p for p in self.audience[agent][1:] if p in targets)]

    @staticmethod
    def slot(entry: str) -> tuple[str, str | None]:
        """A speaking slot 'persona' or 'persona>addressee' as (persona, addressee)."""
        speaker, _, to = entry.partition(">")
        return speaker, to or None

    def model_role(self, agent: str) -> str:
        """The model role of a persona's calls."""
        return self.setup.roles[self.role_of[agent]].model_role

    def point(self, point_id: str) -> DecisionPoint:
        """The decision point with this id."""
        return next(p for p in self.setup.decisions if p.id == point_id)

    def deciders(self, point: DecisionPoint) -> list[str]:
        """Personas answering a decision point, in role then file order."""
        return [pid for role in point.by for pid in self.setup.roles[role].played_by]

    def points_due(self, when: int | str, probes: bool = False) -> list[DecisionPoint]:
        """Decision points asked at ``when`` (0, a round number or 'final'); with probes, every
        point is also asked after every round."""
        due = [p for p in self.setup.decisions if when in p.when]
        if probes and isinstance(when, int) and when > 0:
            due += [p for p in self.setup.decisions if p not in due]
        return due

    def describe(self, point: DecisionPoint, value: dict[str, str]) -> str:
        """An announced answer as its listeners read it."""
        if point.type == "assign":
            from agentsim.agents.decisions import describe_assignment

            return self.texts.fill("said_assign",
                                   assignment=describe_assignment(value, self.scenario))
        return describe(point, value, self.scenario)

    def heard_by(self, viewer: str, transcript: list[dict[str, Any]]) -> str:
        """The transcript as ``viewer`` heard it: only messages whose audience names it."""
        return heard(transcript, viewer, self.texts.fill("nothing_heard"))

    def system_prompt(self, agent: str, seed: int) -> str:
        """Situation, people, tasks (shared, first, for prefix reuse), then the role's text."""
        persona = self.scenario.persona(agent)
        role = self.role_of[agent]
        texts = self.texts
        tasks = (texts.fill("tasks_block", tasks=prompts.task_list(self.scenario))
                 if self.scenario.tasks else "")
        return texts.fill(
            "system", situation=self.scenario.description.strip(), people=self.people(seed),
            tasks_block=tasks, name=persona.name, role=role,
            role_prompt=render_role_prompt(self.setup.roles[role].prompt, persona, role).strip())

    def people(self, seed: int) -> str:
        """Everyone, role players in file order, then the others (e.g. candidates) in an order
        drawn from the seed — shared by a variant group, so position is not confounded with a
        counterfactual attribute."""
        players = [p for p in self.scenario.personas if p.id in self.role_of]
        others = [p for p in self.scenario.personas if p.id not in self.role_of]
        random.Random(derive_seed(seed, "listing")).shuffle(others)
        texts, lines = self.texts, []
        for persona in [*players, *others]:
            shown = [f"{key}: {persona.attributes[key]}" for key in self.setup.show_attributes
                     if key in persona.attributes]
            role = self.role_of.get(persona.id)
            detail = "; ".join([*shown, *([persona.background] if persona.background else [])])
            lines.append(texts.fill(
                "person", name=persona.name,
                role_label=texts.fill("role_label", role=role) if role else "",
                details=texts.fill("details", details=detail) if detail else ""))
        return "\n".join(lines)

    def prompt(self, ctx: Any, agent: str, transcript: list[dict[str, Any]],
               instruction: str) -> list[dict[str, str]]:
        """The messages of one call of ``agent``: its system prompt (after the arm's
        mitigations), then what it has heard and the instruction."""
        name = self.scenario.persona(agent).name
        return [
            {"role": "system", "content": ctx.system_prompt(
                agent, self.system_prompt(agent, ctx.job.seed), role=self.model_role(agent))},
            {"role": "user", "content": self.texts.fill(
                "user", name=name, heard=self.heard_by(agent, transcript),
                instruction=instruction)},
        ]


def build_cast(scenario: Scenario) -> Cast:
    """Resolve a setup's roles, speaking order and audiences against the scenario."""
    setup = scenario.protocol
    assert isinstance(setup, SetupProtocol)
    role_of = {pid: role for role, spec in setup.roles.items() for pid in spec.played_by}
    speaking = {pid for pid, role in role_of.items() if setup.roles[role].speaks}
    order = setup.turns.order or tuple(r for r, spec in setup.roles.items() if spec.speaks)
    speakers: list[str] = []
    for entry in order:
        name, _, to = entry.partition(">")
        for pid in setup.roles[name].played_by if name in setup.roles else (name,):
            if pid in speaking:
                speakers.append(f"{pid}>{to}" if to else pid)
    graph = setup.hearing_graph()
    audience = {}
    for pid, role in role_of.items():
        heard = [other for other, other_role in role_of.items()
                 if other != pid and graph.has_edge(role, other_role)]
        audience[pid] = (pid, *heard)
    return Cast(scenario, setup, role_of, tuple(speakers), audience)


_CASTS: dict[int, tuple[Scenario, Cast]] = {}


def cast_of(scenario: Scenario) -> Cast:
    """The cast of a scenario, built once per scenario object."""
    cached = _CASTS.get(id(scenario))
    if cached is None or cached[0] is not scenario:
        if len(_CASTS) > 256:
            _CASTS.clear()
        cached = _CASTS[id(scenario)] = (scenario, build_cast(scenario))
    return cached[1]
