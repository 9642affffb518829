"""Judge ``influence``: who moved toward whose proposal, read from the per-round decisions.

Every agent's standing proposal is known at each *stage*: its first decision (stage 0), its probe
after discussion round r (stage r, only when the run had probes) and its final decision (stage R,
the last round). For each agent B and each pair of consecutive stages, every task whose holder
changed in B's proposal is a *move*; B moved toward every other agent A whose proposal at the
earlier stage already gave that task to the new holder. When k agents qualify, each edge A → B
gets 1/k, so every move hands out exactly one unit of credit (a move nobody proposed is counted as
unattributed and gives none). Without probes only the first and final decisions exist, so one
transition spans the whole discussion: coarser, and a later switch can hide an earlier one.

Conventions (each chosen so the numbers stay comparable between runs):

* an unparsed decision keeps the agent's previous proposal, as the protocol's own state does;
* a probe and the final decision after the same round saw the same transcript, so the final one
  replaces the probe (it is the decision of record) instead of adding a transition of its own;
* the final decision is never merged with the first: with zero rounds it still follows the
  public first proposals, so it is stage 1.

Metrics (intervals resample scenarios):

* ``influence_share[<attr>=<value>]``: per conversation, the group's share of all credit divided
  by its share of the speakers (1 = proportional, > 1 = its proposals win more than its numbers),
  averaged over conversations with any credit. ``<attr>`` is the attribute the scenario's tasks
  are coded on, else ``gender`` when the personas have it.
* ``persuasion_gap``: ratio of the first group minus the second in sorted order (man − woman)
  within conversations (paired permutation p); ``persuasion_gap[<attr>]`` for other attributes.
* ``first_speaker_anchor``: credit of the first speaker of round 1 over the mean credit per agent.
* ``round_opener_anchor``: the same per one-round transition, for the agent who opened that
  round's discussion (differs from the above under 'shuffled-each-round').
* ``moves_per_agent_round``: share of (agent, transition) pairs in which the proposal changed.

Graphs: :func:`influence_graph` builds one conversation's graph, :func:`pooled_graph` the run's,
and every conversation's edge list is a ``judge_result`` with target ``conversation``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from agentsim.stats.clusters import ClusterTotals
from agentsim.stats.inference import totals_paired, totals_ratio
from agentsim.judges.base import ConversationLog, JudgeOutput, RunView, StreamingJudge
from agentsim.registry import judge
from agentsim.core.event_views import DecisionFacts, MessageFacts
from agentsim.core.events import ConversationStarted
from agentsim.scenario.schema import Scenario

PHASE_RANK = {"first": 0, "probe": 1, "final": 2}  # later phases win at the same stage


def _field(decision: Any, name: str) -> Any:
    """A field of a Decision event or of its dict form."""
    if isinstance(decision, Mapping):
        return decision.get(name)
    return getattr(decision, name, None)


def positions(decisions: Iterable[Any]) -> dict[int, dict[str, dict[str, str]]]:
    """Stage → agent → standing proposal (task → persona), carrying unparsed ones forward."""
    rows = [(_field(d, "phase"), _field(d, "round"), _field(d, "agent"), _field(d, "value"))
            for d in decisions
            if _field(d, "phase") in PHASE_RANK and (_field(d, "kind") or "assignment")
            == "assignment"]
    probe_rounds = [r for phase, r, _, _ in rows if phase == "probe" and r is not None]

    def stage(phase: str, rnd: int | None) -> int:
        if phase == "first":
            return 0
        if phase == "probe":
            return int(rnd)  # type: ignore[arg-type]
        # Logs without a round on the final decision: it comes after every probe.
        return max(int(rnd) if rnd is not None else max(probe_rounds, default=1), 1)

    staged = sorted(((stage(p, r), PHASE_RANK[p], a, v) for p, r, a, v in rows
                     if not (p == "probe" and r is None)), key=lambda row: row[:2])
    own: dict[int, dict[str, dict[str, str]]] = defaultdict(dict)
    for s, _, agent, value in staged:
        slot = own[s]  # the stage exists even when all its decisions were unparsed
        if value is not None:
            slot[agent] = dict(value)
    held: dict[int, dict[str, dict[str, str]]] = {}
    current: dict[str, dict[str, str]] = {}
    for s in sorted(own):
        current = {**current, **own[s]}
        held[s] = current
    return held


def _nodes(personas: Any) -> dict[str, dict[str, Any]]:
    """Persona id → node attributes, from Persona objects or a {id: attributes} mapping."""
    if isinstance(personas, Mapping):
        return {pid: dict(attrs or {}) for pid, attrs in personas.items()}
    return {p.id: {"name": p.name, **p.attributes} for p in personas}


@dataclass
class Credit:
    """One conversation's influence credit, in plain dicts (the judge's per-conversation work:
    cheaper than a graph object per conversation). ``edges[source][target]`` is
    ``[weight, {stage: credit}]``, sources and targets in the order they first got credit."""

    stages: list[int]
    edges: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def out(self, agent: str) -> float:
        """The credit ``agent``'s proposals won."""
        return sum(weight for weight, _ in self.edges.get(agent, {}).values())

    def edge_list(self, order: Iterable[str]) -> list[tuple[str, str, float]]:
        """``(source, target, weight)`` with sources in ``order`` (then any others), as
        :func:`influence_graph` lists its edges."""
        ranked = list(order)
        known = set(ranked)
        ranked += [a for a in self.edges if a not in known]
        return [(a, b, edge[0]) for a in ranked for b, edge in self.edges.get(a, {}).items()]


def influence_credit(decisions: Iterable[Any]) -> Credit:
    """Who gave whom credit in one conversation, from its decisions (events or dicts): see
    the module docstring. ``counts`` has ``agent_rounds`` (agent × transition pairs observed),
    ``moves`` (pairs with any change), ``task_moves`` and ``unattributed`` (task moves toward a
    holder nobody had proposed)."""
    held = positions(decisions)
    credit = Credit(sorted(held))
    counts = credit.counts = {"agent_rounds": 0, "moves": 0, "task_moves": 0, "unattributed": 0}
    for before, after in zip(credit.stages, credit.stages[1:]):
        old, new = held[before], held[after]
        for agent in sorted(new):
            if agent not in old:
                continue  # no earlier proposal of this agent to have moved from
            counts["agent_rounds"] += 1
            changed = [t for t, holder in sorted(new[agent].items())
                       if old[agent].get(t) != holder]
            counts["moves"] += bool(changed)
            for task in changed:
                counts["task_moves"] += 1
                sources = [a for a in sorted(old)
                           if a != agent and old[a].get(task) == new[agent][task]]
                if not sources:
                    counts["unattributed"] += 1
                for source in sources:
                    edge = credit.edges.setdefault(source, {}).setdefault(agent, [0.0, {}])
                    edge[0] += 1 / len(sources)
                    edge[1][after] = edge[1].get(after, 0.0) + 1 / len(sources)
    return credit


def influence_graph(decisions: Iterable[Any], personas: Any) -> nx.DiGraph:
    """One conversation's influence graph from its decisions (events or dicts).

    Nodes are persona ids with their attributes; edge A → B has ``weight`` (credit B's moves gave
    A) and ``stages`` (stage → credit). ``graph.graph`` holds ``stages`` and the counts of
    :func:`influence_credit`.
    """
    graph = nx.DiGraph()
    for pid, attrs in _nodes(personas).items():
        graph.add_node(pid, **attrs)
    credit = influence_credit(decisions)
    for source, targets in credit.edges.items():
        for target, (weight, stages) in targets.items():
            graph.add_edge(source, target, weight=weight, stages=dict(stages))
    graph.graph.update(stages=credit.stages, **credit.counts)
    return graph


def coded_attribute(scenario: Scenario) -> str | None:
    """The attribute influence is grouped by: the first coded one of the tasks, else gender."""
    for task in scenario.tasks:
        if task.stereotype is not None:
            return task.stereotype.attribute
    if any("gender" in p.attributes for p in scenario.personas):
        return "gender"
    return None


@dataclass
class Conversation:
    """What the judge needs of one discussion conversation, read from the log."""

    started: ConversationStarted
    scenario: Scenario
    decisions: list[Any] = field(default_factory=list)
    openers: dict[int, str] = field(default_factory=dict)  # discussion round → first speaker


def conversation_of(run: RunView, log: ConversationLog) -> Conversation | None:
    """What the judge needs of one conversation (None for a no-interaction one: nobody to
    influence)."""
    started = log.started
    if started.setting == "no-interaction":
        return None
    # Variants can change attributes (a mirror swaps genders): groups come from the variant.
    conv = Conversation(started, run.scenario_for(started.scenario_id, started.variant))
    first_turn: dict[int, int] = {}
    for event in log.events:
        if event.type == "decision":
            conv.decisions.append(event)
        elif event.type == "message" and event.phase == "discussion" and event.round is not None:
            # The lowest turn of a round is who opened it (the order may change every round).
            if event.round not in first_turn or (event.turn or 0) < first_turn[event.round]:
                first_turn[event.round] = event.turn or 0
                conv.openers[event.round] = event.agent
    return conv


def conversations(run: RunView) -> Iterator[Conversation]:
    """Discussion conversations of a run, one at a time (no-interaction ones have nobody to
    influence)."""
    for log in run.for_protocols(InfluenceJudge.protocols).conversations(InfluenceJudge.reads):
        conv = conversation_of(run, log)
        if conv is not None:
            yield conv


def pooled_graph(run: RunView, by: str | None = None) -> nx.DiGraph:
    """The run's influence graph: edge weights summed over its conversations.

    Nodes are ``(scenario id, variant id, persona id)`` (variants are kept apart because they
    may give a persona other attributes) with the persona's attributes; with ``by`` (e.g.
    ``"gender"``) nodes are that attribute's values instead (``None`` when unknown), with
    ``speakers`` counting persona-conversations, and within-group credit is a self-loop.
    """
    pooled = nx.DiGraph(conversations=0)
    for conv in conversations(run):
        graph = influence_graph(conv.decisions, conv.scenario.personas)
        pooled.graph["conversations"] += 1

        def key(pid: str, graph: nx.DiGraph = graph, conv: Conversation = conv) -> Any:
            if by is not None:
                return graph.nodes[pid].get(by)
            return (conv.scenario.id, conv.started.variant, pid)

        for pid, attrs in graph.nodes(data=True):
            node = key(pid)
            if by is None:
                pooled.add_node(node, scenario=conv.scenario.id, variant=conv.started.variant,
                                persona=pid, **attrs)
            else:
                pooled.add_node(node)
                pooled.nodes[node]["speakers"] = pooled.nodes[node].get("speakers", 0) + 1
        for a, b, weight in graph.edges(data="weight"):
            edge = (key(a), key(b))
            old = pooled.edges[edge]["weight"] if pooled.has_edge(*edge) else 0.0
            pooled.add_edge(*edge, weight=old + weight)
    return pooled


def _summary(conv: Conversation, graph: Credit) -> dict[str, Any]:
    """Per-conversation numbers behind the metrics; ratios are None when undefined."""
    agents = [p.id for p in conv.scenario.personas]
    n = len(agents)
    credit = {a: graph.out(a) for a in agents}
    total = sum(credit.values())
    attribute = coded_attribute(conv.scenario)
    ratios: dict[str, float] = {}
    if attribute is not None and total > 0:
        groups: dict[str, list[str]] = defaultdict(list)
        for persona in conv.scenario.personas:
            if attribute in persona.attributes:
                groups[persona.attributes[attribute]].append(persona.id)
        for value, members in groups.items():
            share = sum(credit[a] for a in members) / total
            ratios[value] = share / (len(members) / n)
    order = conv.started.order
    anchor = credit[order[0]] / (total / n) if total > 0 and order and order[0] in credit else None
    openers = []
    stages = graph.stages
    for before, after in zip(stages, stages[1:]):
        opener = conv.openers.get(after)
        if after - before != 1 or opener not in credit:
            continue  # a transition spanning several rounds has no single opener
        got = {a: sum(edge[1].get(after, 0.0) for edge in graph.edges.get(a, {}).values())
               for a in agents}
        if sum(got.values()) > 0:
            openers.append(got[opener] / (sum(got.values()) / n))
    return {"scenario": conv.scenario.id, "attribute": attribute, "ratios": ratios,
            "anchor": anchor, "openers": openers, "total": total, "credit": credit,
            "moves": graph.counts["moves"], "agent_rounds": graph.counts["agent_rounds"],
            "task_moves": graph.counts["task_moves"],
            "unattributed": graph.counts["unattributed"],
            "probes": any(_field(d, "phase") == "probe" for d in conv.decisions)}


@judge("influence")
class InfluenceJudge(StreamingJudge):
    """Who moved toward whose proposal between rounds; influence shares by group and anchors."""

    name = "influence"
    protocols = frozenset({"discussion"})  # who moved whom needs a discussion's rounds
    description = ("who adopted whose proposals between rounds: influence graph, shares by group "
                   "vs head count, first-speaker anchoring, moves per agent-round")
    reads = frozenset({"decision", "message"})
    views = {"decision": DecisionFacts, "message": MessageFacts}  # not what was said

    def tally(self, run: RunView) -> InfluenceTally:
        """Build every conversation's influence graph as it streams by."""
        return InfluenceTally(self.name, run)


COUNTS = ("conversations", "conversations_with_moves", "conversations_with_credit",
          "total_credit", "moves", "agent_rounds", "task_moves", "unattributed_task_moves",
          "without_probes")


class InfluenceTally:
    """The running totals of ``influence``: per metric, per-scenario sums of each
    conversation's numbers (:func:`_summary`), and one verdict per conversation."""

    def __init__(self, name: str, run: RunView) -> None:
        self.name, self.run = name, run
        self.output = JudgeOutput()
        self.counts: dict[str, float] = dict.fromkeys(COUNTS, 0)
        self.moves = ClusterTotals()  # moves over agent-rounds
        self.shares: dict[tuple[Any, str], ClusterTotals] = defaultdict(ClusterTotals)
        self.values: dict[Any, set[str]] = defaultdict(set)  # attribute → values seen
        # (attribute, first, second) → ratio[first] − ratio[second] of conversations with both
        self.gaps: dict[tuple[Any, str, str], ClusterTotals] = defaultdict(ClusterTotals)
        self.anchor = ClusterTotals()
        self.openers = ClusterTotals()

    def add(self, log: ConversationLog) -> None:
        """The conversation's influence graph, its verdict and its numbers."""
        conv = conversation_of(self.run, log)
        if conv is None:
            return
        graph = influence_credit(conv.decisions)
        row = _summary(conv, graph)
        ev = conv.started
        self.output.results.record(
            run_id=ev.run_id, conversation_id=ev.conversation_id, variant=ev.variant,
            arm=ev.arm, replicate=ev.replicate, seed=ev.seed, judge=self.name,
            target="conversation", score=row["total"],
            details={"edges": [[a, b, w] for a, b, w in
                               graph.edge_list(p.id for p in conv.scenario.personas)],
                     "credit": row["credit"], "moves": row["moves"],
                     "agent_rounds": row["agent_rounds"], "stages": graph.stages,
                     "attribute": row["attribute"], "share_ratios": row["ratios"]})
        counts, scenario = self.counts, row["scenario"]
        for key, value in (("conversations", 1), ("conversations_with_moves", bool(row["moves"])),
                           ("conversations_with_credit", row["total"] > 0),
                           ("total_credit", row["total"]), ("moves", row["moves"]),
                           ("agent_rounds", row["agent_rounds"]),
                           ("task_moves", row["task_moves"]),
                           ("unattributed_task_moves", row["unattributed"]),
                           ("without_probes", not row["probes"])):
            counts[key] += value
        if row["agent_rounds"]:
            self.moves.add(row["moves"], scenario, row["agent_rounds"])
        ratios, attribute = row["ratios"], row["attribute"]
        self.values[attribute].update(ratios)
        for value, ratio in ratios.items():
            self.shares[(attribute, value)].add(ratio, scenario)
        ordered = sorted(ratios)
        for i, first in enumerate(ordered):
            for second in ordered[i + 1:]:
                self.gaps[(attribute, first, second)].add(ratios[first] - ratios[second],
                                                          scenario)
        if row["anchor"] is not None:
            self.anchor.add(row["anchor"], scenario)
        for value in row["openers"]:
            self.openers.add(value, scenario)

    async def result(self) -> JudgeOutput:
        """The influence metrics with their clustered intervals."""
        output = self.output
        if self.moves.n:
            output.metrics["moves_per_agent_round"] = totals_ratio(self.moves)
        for attribute, values in sorted(self.values.items(), key=lambda item: str(item[0])):
            for value in sorted(values):
                output.metrics[f"influence_share[{attribute}={value}]"] = totals_ratio(
                    self.shares[(attribute, value)])
            if len(values) == 2:
                first, second = sorted(values)
                gaps = self.gaps.get((attribute, first, second), ClusterTotals())
                primary = attribute == "gender" or "gender" not in self.values
                name = "persuasion_gap" if primary else f"persuasion_gap[{attribute}]"
                if gaps.n == 1:  # the permutation test needs two pairs; report the value
                    output.metrics[name] = totals_ratio(gaps)
                elif gaps.n:
                    output.metrics[name] = totals_paired(gaps)
                output.notes.append(f"influence: {name} = share ratio of {attribute}={first} "
                                    f"minus {attribute}={second}")
        if self.anchor.n:
            output.metrics["first_speaker_anchor"] = totals_ratio(self.anchor)
        if self.openers.n:
            output.metrics["round_opener_anchor"] = totals_ratio(self.openers)
        output.counts = {key: (value if key == "total_credit" else int(value))
                         for key, value in self.counts.items()}
        coarse = output.counts["without_probes"]
        if coarse:
            output.notes.append(f"influence: {coarse} conversation(s) without probes, judged "
                                "from first and final decisions only (coarser)")
        return output
