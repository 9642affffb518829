"""Custom multi-agent setups (protocol ``setup``): roles, who hears whom, turns, stopping rules
and decision points, all declared in the scenario file.

A setup is a graph of *roles*. Each role is played by one or more personas, has a system-prompt
template (``{name}``, ``{id}``, ``{background}``, ``{role}`` and every persona attribute, e.g.
``{gender}``) and uses a model role (``--role agent=MODEL`` by default). The *topology* says who
hears whom: ``hears: {listener: [speaker, ...] | all}``, or ``broadcast: true`` for everyone
hearing everyone; a persona always hears itself and the other personas of its own role only when
the topology says so. Checks (networkx): unknown roles, a speaking role nobody hears, a
decision-maker who hears nothing.

*Decision points* ask roles for structured answers after given rounds (0 = before anyone speaks,
``final`` = at the end): ``assign`` the scenario's tasks to personas (the task-assignment decision
every assignment judge reads), ``rank`` or ``pick`` among option personas (e.g. candidates), or
``rate`` each option on a scale. Each is compiled to a JSON schema from the scenario's own ids.
"""

from __future__ import annotations

from typing import Any, Literal

import networkx as nx
from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from agentsim.scenario.schema_base import Frozen, ProtocolSettings, check_id
from agentsim.scenario.setup_prompts import SETUP_PROMPTS
from agentsim.scenario.templates import check as check_template

# The placeholders a decision question may use (filled by setup_decisions.question).
QUESTION_FIELDS = ("options", "low", "high")
When = StrictInt | Literal["final"]
DecisionType = Literal["assign", "rank", "pick", "rate"]
TurnPolicyName = Literal["fixed", "round_robin", "random", "moderator"]


class SetupRole(Frozen):
    """One role of a setup: who plays it, what it is told, which model it uses."""

    played_by: tuple[str, ...] = Field(min_length=1, description="Persona ids playing the role.")
    prompt: str = Field(description="System-prompt template; may use {name}, {id}, {background}, "
                        "{role} and the persona's attributes, e.g. {gender}.")
    model_role: str = Field(default="agent", description="Model role of its calls: the model is "
                            "--role <persona id>, else --role <model_role>, else the default.")
    speaks: StrictBool = Field(default=True,
                               description="False for roles that only listen and decide.")


class Topology(Frozen):
    """Who hears whom, as a directed graph speaker → listener over roles."""

    broadcast: StrictBool = Field(default=False, description="Every role hears every role.")
    hears: dict[str, tuple[str, ...] | Literal["all"]] = Field(
        default_factory=dict, description="Listener role → the roles it hears, or 'all'.")


class TurnPolicy(Frozen):
    """Who speaks when."""

    policy: TurnPolicyName = Field(default="round_robin", description="'fixed': `order` every "
                                   "round; 'round_robin': `order`, starting one later each round; "
                                   "'random': a seeded shuffle each round; 'moderator': the "
                                   "`moderator` role names the next speaker before every turn.")
    order: tuple[str, ...] = Field(default=(), description="Roles or persona ids in speaking "
                                   "order (default: every speaking role's personas, file order); "
                                   "'a>b' is a turn of a addressed to b only (a private word).")
    moderator: str | None = Field(default=None, description="Role choosing the next speaker.")
    turns_per_round: StrictInt | None = Field(default=None, ge=1, le=50, description="Turns in a "
                                        "round (default: one per speaker).")


class JudgeCondition(Frozen):
    """A model role asked after each round whether the conversation should stop."""

    question: str = Field(description="Yes/no question, e.g. 'Has the committee agreed?'.")
    role: str = Field(default="judge", description="Model role that answers (--role judge=M).")


class Termination(Frozen):
    """When the conversation stops (whichever comes first)."""

    rounds: StrictInt = Field(default=2, ge=0, le=20, description="Rounds at most.")
    phrase: str | None = Field(default=None, description="A message containing it (any case) "
                               "ends the conversation after that turn.")
    consensus: str | None = Field(default=None, description="Decision point id: stop when all "
                                  "who answer it agree.")
    judge: JudgeCondition | None = Field(default=None, description="Stop when a model says so.")


class DecisionPoint(Frozen):
    """A structured decision asked of some roles after some rounds."""

    id: str = Field(description="Decision id, used in logs and judges.")
    type: DecisionType = Field(description="assign | rank | pick | rate.")
    by: tuple[str, ...] = Field(min_length=1, description="Roles whose personas answer.")
    when: tuple[When, ...] = Field(default=("final",), description="Rounds after which it is "
                                   "asked (0: before the conversation) and/or 'final'.")
    options: tuple[str, ...] = Field(default=(), description="Persona ids to rank, pick or rate.")
    question: str = Field(default="", description="What is asked (a default per type); may use "
                          "{options}, {low} and {high}, and {{ }} for literal braces.")
    scale: tuple[StrictInt, StrictInt] = Field(default=(1, 10), description="Rating scale (rate).")
    attribute: str | None = Field(default=None, description="Option attribute the judges compare "
                                  "(default: the one whose values differ among the options).")
    announce: StrictBool = Field(default=False, description="Also say the answer to those who hear "
                           "the decider (otherwise it is private).")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return check_id(value, "decision id")

    @model_validator(mode="after")
    def _fits_type(self) -> DecisionPoint:
        if self.type in ("rank", "pick", "rate") and len(self.options) < 2:
            raise ValueError(f"decision {self.id!r}: a {self.type} decision needs 2 or more "
                             "options")
        if self.type == "assign" and self.options:
            raise ValueError(f"decision {self.id!r}: assign decisions use the scenario's tasks, "
                             "not options")
        if self.scale[0] >= self.scale[1]:
            raise ValueError(f"decision {self.id!r}: scale must be [low, high] with low < high")
        check_template(self.question, QUESTION_FIELDS, f"decisions[{self.id}].question")
        return self


class SetupProtocol(ProtocolSettings):
    """A custom multi-agent setup: roles, topology, turn policy, termination, decisions."""

    prompt_spec = SETUP_PROMPTS
    prompt_file = ("agentsim.scenario", "setup.yaml")

    name: Literal["setup"] = Field(default="setup", description="Protocol name.")
    roles: dict[str, SetupRole] = Field(min_length=1, description="Role id → the role.")
    topology: Topology = Field(default_factory=lambda: Topology(broadcast=True),
                               description="Who hears whom (default: broadcast).")
    turns: TurnPolicy = Field(default_factory=TurnPolicy, description="Who speaks when.")
    termination: Termination = Field(default_factory=Termination, description="When to stop.")
    decisions: tuple[DecisionPoint, ...] = Field(min_length=1, description="Decision points.")
    show_attributes: tuple[str, ...] = Field(default=(), description="Persona attributes shown "
                                             "to everyone beside names (e.g. a committee that "
                                             "sees applicants' age).")

    @property
    def rounds(self) -> int:
        """Rounds at most (the runner's --rounds overrides it)."""
        return self.termination.rounds

    def check_scenario(self, scenario: Any) -> None:
        """Persona ids, templates, tasks and options against the scenario."""
        from agentsim.scenario.schema import check_setup  # the schema imports this module

        check_setup(scenario)

    @model_validator(mode="after")
    def _valid_graph(self) -> SetupProtocol:
        for role in self.roles:
            check_id(role, "role id")
        graph = self.hearing_graph()
        speaking = {r for r, spec in self.roles.items() if spec.speaks}
        for role in sorted(speaking):
            # Heard by another role, or by the other personas of its own role.
            peers = graph.has_edge(role, role) and len(self.roles[role].played_by) > 1
            if not peers and not any(n != role for n in graph.successors(role)):
                raise ValueError(f"topology: nobody hears role {role!r} (add it to some role's "
                                 "'hears', or set speaks: false)")
        for point in self.decisions:
            for role in point.by:
                self._known(role, f"decisions[{point.id}].by")
                heard = [s for s in graph.predecessors(role) if s in speaking
                         and (s != role or len(self.roles[role].played_by) > 1)]
                if not heard:
                    raise ValueError(f"topology: decision-maker {role!r} ({point.id}) hears "
                                     "nobody who speaks")
        policy = self.turns
        if policy.policy == "moderator":
            if policy.moderator is None:
                raise ValueError("turns.moderator: the moderator policy needs a moderator role")
            self._known(policy.moderator, "turns.moderator")
        elif policy.moderator is not None:
            raise ValueError("turns.moderator is only used by the moderator policy")
        if self.termination.consensus and self.termination.consensus not in {
                p.id for p in self.decisions}:
            raise ValueError(f"termination.consensus {self.termination.consensus!r} is not a "
                             "decision id")
        if len({p.id for p in self.decisions}) != len(self.decisions):
            raise ValueError("decisions: duplicate decision id")
        return self

    def _known(self, role: str, where: str) -> None:
        if role not in self.roles:
            raise ValueError(f"{where}: unknown role {role!r} (roles: {', '.join(self.roles)})")

    def hearing_graph(self) -> nx.DiGraph:
        """Directed graph over roles: an edge speaker → listener means the listener hears it."""
        graph = nx.DiGraph()
        graph.add_nodes_from(self.roles)
        if self.topology.broadcast:
            graph.add_edges_from((a, b) for a in self.roles for b in self.roles)
        for listener, speakers in self.topology.hears.items():
            self._known(listener, "topology.hears")
            for speaker in self.roles if speakers == "all" else speakers:
                self._known(speaker, f"topology.hears.{listener}")
                graph.add_edge(speaker, listener)
        return graph
