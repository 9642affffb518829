"""The conversation kernel every protocol is built on, and the protocol plugin contract.

A protocol is a :class:`ConversationProtocol` registered once with
:func:`agentsim.registry.protocol`. It owns everything about its kind of conversation: the
pydantic model of its settings (the scenario's ``protocol:`` mapping is validated through the
registry, so a protocol from an entry point or a user's module is configurable from a file), the
job fields it plans, the graph it builds, the initial state and the state at turn K for forks,
its topology, its model roles and its default judges. The runner, fork, drawing, judging and the
scenario schema dispatch through it; nothing outside a protocol's own module branches on its name.

The kernel gives every protocol the same parts, so a protocol module holds only what is its own:

* one utterance type (:class:`Utterance`: speaker, content, round, phase, audience);
* one way to say something (:func:`say`) and to render what a listener heard (:func:`heard`);
* one runner of between-round hooks (:func:`between_rounds`);
* the typed context mitigation hooks receive (:class:`HookContext`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from agentsim.core.events import Message

if TYPE_CHECKING:  # typing only: the runner's options and the scenario schema
    import networkx as nx

    from agentsim.orchestrator.runtime import ConversationContext
    from agentsim.scenario.schema import Scenario

EMPTY = "(nothing has been said yet)"
# Events a fork copies from its parent's conversation: what was said, decided and called.
COPIED = frozenset({"message", "decision", "model_call", "mitigation_applied"})


class Utterance(TypedDict):
    """One entry of a conversation's transcript, as its graph state holds it."""

    agent: str  # persona id (or a role such as 'doctor', 'moderator') of the speaker
    speaker: str  # the name listeners read
    content: str
    phase: str  # 'first', 'discussion', 'decision', 'mitigation', a protocol's own phase
    round: int | None
    audience: list[str] | None  # who hears it; None: everyone


def say(ctx: ConversationContext, *, agent: str, content: str, turn: int, phase: str,
        round_number: int | None = None, audience: Sequence[str] | None = None,
        speaker: str | None = None) -> Utterance:
    """Log a ``message`` event and return the transcript entry (the one way to speak)."""
    name = speaker if speaker is not None else ctx.speaker_name(agent)
    heard_by = list(audience) if audience is not None else None
    ctx.emit(Message(**ctx.ids(turn=turn, agent=agent), speaker=name, phase=phase,
                     round=round_number, content=content, visible_to=heard_by))
    return Utterance(agent=agent, speaker=name, content=content, phase=phase,
                     round=round_number, audience=heard_by)


def heard(transcript: Sequence[Utterance], viewer: str | None = None,
          empty: str = EMPTY) -> str:
    """What ``viewer`` heard, one 'Name: text' line per utterance (everything when None)."""
    lines = [f"{u['speaker']}: {u['content']}" for u in transcript
             if viewer is None or u["audience"] is None or viewer in u["audience"]]
    return "\n".join(lines) or empty


@dataclass(frozen=True)
class HookContext:
    """What a mitigation hook is told about the moment it runs.

    Attributes the hook context does not have (``scenario``, ``job``, ``call``, ``structured``,
    ``applied``, ``decided``) are the conversation context's, so a hook reads and calls through
    it alone. What a provider asked to know about the conversation (its facts) is not for
    hooks: a mitigation that needs a scenario fact computes it from ``scenario``.
    """

    conversation: ConversationContext  # the conversation's dependencies
    protocol: str  # the registered protocol running the conversation
    turn: int | None = None  # the log's turn counter at the hook (the turn it would speak on)
    round: int | None = None  # the round just completed (between_rounds) or being decided
    agent: str | None = None  # the agent concerned, if any
    role: str | None = None  # the model role of that agent's calls (a setup's model_role)
    transcript: tuple[Utterance, ...] = ()  # what has been said so far

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conversation, name)

    @property
    def listing(self) -> list[str]:
        """Persona ids in the order the conversation lists them to its agents."""
        return self.conversation.plugin.listing_order(self.conversation)


async def between_rounds(ctx: ConversationContext, round_number: int,
                         transcript: Sequence[Utterance], turn: int,
                         audience: Sequence[str] | None = None,
                         advance: bool = True) -> tuple[list[Utterance], int]:
    """Turns the arm's mitigations add after a round (a moderator's remark), said to
    ``audience``: each on a turn of its own, or all on ``turn`` when not ``advance``. Returns
    the new utterances and the next turn."""
    added: list[Utterance] = []
    for mitigation in ctx.mitigations:
        hook = ctx.hook(turn=turn, round_number=round_number, agent=None, role=None,
                        transcript=[*transcript, *added])
        for remark in await mitigation.between_rounds(hook, round_number, [*transcript, *added]):
            ctx.applied(mitigation, "between_rounds", turn, remark["speaker"],
                        round=round_number, content=remark["content"])
            added.append(say(ctx, agent=remark["speaker"], speaker=remark["speaker"],
                             content=remark["content"], turn=turn, phase="mitigation",
                             round_number=round_number, audience=audience))
            turn += 1 if advance else 0
    return added, turn


class ConversationProtocol:
    """A kind of conversation: the contract every registered protocol fulfils.

    Subclass it, set ``settings`` (the pydantic model of the scenario's ``protocol:`` mapping,
    with a ``name`` literal equal to the protocol's name), implement :meth:`graph` and
    :meth:`initial_state`, and register the class with ``@protocol("name")``. The rest has
    defaults that suit a protocol without rounds, variants of settings or forks.
    """

    name: ClassVar[str] = ""
    settings: ClassVar[type]  # pydantic model of the scenario's ``protocol:`` mapping
    roles: ClassVar[tuple[str, ...]] = ("agent",)  # model roles its calls use
    # Run options (``agentsim run --rounds`` ...) its conversations take; the CLI refuses an
    # option no scenario of the run takes and warns when only some do.
    options: ClassVar[frozenset[str]] = frozenset({"rounds"})
    default_judges: ClassVar[tuple[str, ...]] = ()  # judges of a run that gives none

    # -- planning ----------------------------------------------------------------------------
    def job_fields(self, scenario: Scenario, options: Any) -> dict[str, Any]:
        """Fields of :class:`agentsim.core.jobs.ConversationJob` this protocol sets from the
        scenario and the run's options (its setting, rounds, speaking order, turn budget)."""
        return {"setting": self.name,
                "rounds": getattr(scenario.protocol, "rounds", 0)
                if options.rounds is None else options.rounds}

    def conditions(self, scenario: Scenario, options: Any) -> list[str]:
        """Conditions each (scenario, variant, replicate) runs under (clinical: biases)."""
        return ["none"]

    def takes(self, option: str, scenario: Scenario, setting: str | None = None) -> bool:
        """Whether a conversation of ``scenario`` uses the run option ``option`` (``setting``:
        the run's ``--setting``, for protocols whose settings decide it)."""
        return option in self.options

    def model_roles(self, scenario: Scenario) -> set[str]:
        """Roles ``--role ROLE=MODEL`` may name for this scenario (besides persona ids)."""
        return set(self.roles)

    # -- running -----------------------------------------------------------------------------
    def graph(self, scenario: Scenario, job: Any) -> Any:
        """The compiled LangGraph graph the conversation runs on."""
        raise NotImplementedError

    def initial_state(self, ctx: ConversationContext) -> dict[str, Any]:
        """The graph state a new conversation starts from."""
        raise NotImplementedError

    def recursion_limit(self, ctx: ConversationContext) -> int:
        """A bound on graph steps (LangGraph stops a runaway graph there)."""
        return 25 + 4 * max(ctx.job.rounds, 1) * max(len(ctx.scenario.personas), 1)

    def listing_order(self, ctx: ConversationContext) -> list[str]:
        """Persona ids in the order the conversation lists them to its agents."""
        return [p.id for p in ctx.scenario.personas]

    def started_order(self, ctx: ConversationContext) -> list[str]:
        """The speaking order logged with ``conversation_started`` (none by default)."""
        return []

    def speaker_name(self, scenario: Scenario, agent: str) -> str:
        """The name listeners read for ``agent`` (a persona's name, else the id)."""
        known = {p.id: p.name for p in scenario.personas}
        return known.get(agent, agent)

    async def run(self, ctx: ConversationContext) -> dict[str, Any]:
        """Run one conversation to its end; returns the final graph state."""
        state = self.initial_state(ctx)
        if ctx.resume_state:  # a fork: the turns before K come from the parent's log
            state.update(ctx.resume_state)
        return await self.graph(ctx.scenario, ctx.job).ainvoke(
            state, context=ctx, config={"recursion_limit": self.recursion_limit(ctx)})

    # -- forks ---------------------------------------------------------------------------------
    @property
    def forkable(self) -> bool:
        """Whether a logged conversation of this protocol can be forked (it has state_at)."""
        return type(self).state_at is not ConversationProtocol.state_at

    def state_at(self, events: list[Any], job: Any, scenario: Scenario,
                 from_turn: int) -> dict[str, Any]:
        """The graph state a parent conversation (all its ``events``) leaves before
        ``from_turn``, for a fork to continue from; {} for a fresh start. Raise
        :class:`agentsim.errors.InputError` (source ``--from-turn``) for a turn it cannot
        continue from. The fork copies :func:`events_before` the turn."""
        raise NotImplementedError(f"forking {self.name} conversations is not supported")

    # -- drawing -------------------------------------------------------------------------------
    def topology(self, scenario: Scenario) -> nx.DiGraph:
        """Who hears whom: an edge a → b when b hears what a says (default: everyone)."""
        import networkx as nx

        graph = nx.DiGraph()
        ids = [p.id for p in scenario.personas]
        graph.add_nodes_from(ids)
        graph.add_edges_from((a, b) for a in ids for b in ids if a != b)
        return graph


def events_before(events: list[Any], from_turn: int) -> list[Any]:
    """A parent's conversation events (messages, decisions, calls) before ``from_turn``."""
    return [e for e in events if e.turn is not None and e.turn < from_turn and e.type in COPIED]


def plugin_for(name: str) -> ConversationProtocol:
    """The registered protocol ``name``."""
    from agentsim.registry import REGISTRY

    return REGISTRY.get("protocol", name)
