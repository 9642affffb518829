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

from agentsim.stats.inference import clustered_mean, clustered_ratio, paired_difference
from agentsim.judges.base import JudgeOutput, RunView
from agentsim.registry import judge
from agentsim.core.events import ConversationStarted, JudgeResult
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


def influence_graph(decisions: Iterable[Any], personas: Any) -> nx.DiGraph:
    """One conversation's influence graph from its decisions (events or dicts).

    Nodes are persona ids with their attributes; edge A → B has ``weight`` (credit B's moves gave
    A) and ``stages`` (stage → credit). ``graph.graph`` holds ``stages``, ``agent_rounds``
    (agent × transition pairs observed), ``moves`` (pairs with any change), ``task_moves`` and
    ``unattributed`` (task moves toward a holder nobody had proposed).
    """
    graph = nx.DiGraph()
    for pid, attrs in _nodes(personas).items():
        graph.add_node(pid, **attrs)
    held = positions(decisions)
    stages = sorted(held)
    counts = {"agent_rounds": 0, "moves": 0, "task_moves": 0, "unattributed": 0}
    for before, after in zip(stages, stages[1:]):
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
                    _credit(graph, source, agent, after, 1 / len(sources))
    graph.graph.update(stages=stages, **counts)
    return graph


def _credit(graph: nx.DiGraph, source: str, target: str, stage: int, weight: float) -> None:
    if not graph.has_edge(source, target):
        graph.add_edge(source, target, weight=0.0, stages={})
    edge = graph.edges[source, target]
    edge["weight"] += weight
    edge["stages"][stage] = edge["stages"].get(stage, 0.0) + weight


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


def conversations(run: RunView) -> Iterator[Conversation]:
    """Discussion conversations of a run (no-interaction ones have nobody to influence)."""
    found: dict[str, Conversation] = {}
    run = run.for_protocols(InfluenceJudge.protocols)
    for event in run.events("conversation_started"):
        if event.setting == "no-interaction":
            continue
        # Variants can change attributes (a mirror swaps genders): groups come from the variant.
        scenario = run.scenario_for(event.scenario_id, event.variant)
        found[event.conversation_id] = Conversation(event, scenario)
    first_turn: dict[tuple[str, int], int] = {}
    for event in run.events("decision", "message"):
        conv = found.get(event.conversation_id)
        if conv is None:
            continue
        if event.type == "decision":
            conv.decisions.append(event)
        elif event.phase == "discussion" and event.round is not None:
            # The lowest turn of a round is who opened it (the order may change every round).
            key = (event.conversation_id, event.round)
            if key not in first_turn or (event.turn or 0) < first_turn[key]:
                first_turn[key] = event.turn or 0
                conv.openers[event.round] = event.agent
    yield from found.values()


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


def _summary(conv: Conversation, graph: nx.DiGraph) -> dict[str, Any]:
    """Per-conversation numbers behind the metrics; ratios are None when undefined."""
    agents = [p.id for p in conv.scenario.personas]
    n = len(agents)
    credit = {a: graph.out_degree(a, weight="weight") for a in agents}
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
    stages = graph.graph["stages"]
    for before, after in zip(stages, stages[1:]):
        opener = conv.openers.get(after)
        if after - before != 1 or opener not in credit:
            continue  # a transition spanning several rounds has no single opener
        got = {a: sum(graph.edges[a, b]["stages"].get(after, 0.0) for b in graph.successors(a))
               for a in agents}
        if sum(got.values()) > 0:
            openers.append(got[opener] / (sum(got.values()) / n))
    return {"scenario": conv.scenario.id, "attribute": attribute, "ratios": ratios,
            "anchor": anchor, "openers": openers, "total": total, "credit": credit,
            "moves": graph.graph["moves"], "agent_rounds": graph.graph["agent_rounds"],
            "task_moves": graph.graph["task_moves"],
            "unattributed": graph.graph["unattributed"],
            "probes": any(_field(d, "phase") == "probe" for d in conv.decisions)}


@judge("influence")
class InfluenceJudge:
    """Who moved toward whose proposal between rounds; influence shares by group and anchors."""

    name = "influence"
    protocols = frozenset({"discussion"})  # who moved whom needs a discussion's rounds
    description = ("who adopted whose proposals between rounds: influence graph, shares by group "
                   "vs head count, first-speaker anchoring, moves per agent-round")

    async def judge(self, run: RunView) -> JudgeOutput:
        """Build every conversation's influence graph and compute the metrics."""
        output = JudgeOutput()
        rows = []
        for conv in conversations(run):
            graph = influence_graph(conv.decisions, conv.scenario.personas)
            row = _summary(conv, graph)
            rows.append(row)
            ev = conv.started
            output.results.append(JudgeResult(
                run_id=ev.run_id, conversation_id=ev.conversation_id, variant=ev.variant,
                arm=ev.arm, replicate=ev.replicate, seed=ev.seed, judge=self.name,
                target="conversation", score=row["total"],
                details={"edges": [[a, b, w] for a, b, w in graph.edges(data="weight")],
                         "credit": row["credit"], "moves": row["moves"],
                         "agent_rounds": row["agent_rounds"], "stages": graph.graph["stages"],
                         "attribute": row["attribute"], "share_ratios": row["ratios"]},
            ))
        self._metrics(rows, output)
        coarse = sum(1 for r in rows if not r["probes"])
        output.counts = {
            "conversations": len(rows),
            "conversations_with_moves": sum(1 for r in rows if r["moves"]),
            "conversations_with_credit": sum(1 for r in rows if r["total"] > 0),
            "total_credit": sum(r["total"] for r in rows),
            "moves": sum(r["moves"] for r in rows),
            "agent_rounds": sum(r["agent_rounds"] for r in rows),
            "task_moves": sum(r["task_moves"] for r in rows),
            "unattributed_task_moves": sum(r["unattributed"] for r in rows),
            "without_probes": coarse,
        }
        if coarse:
            output.notes.append(f"influence: {coarse} conversation(s) without probes, judged "
                                "from first and final decisions only (coarser)")
        return output

    @staticmethod
    def _metrics(rows: list[dict[str, Any]], output: JudgeOutput) -> None:
        observed = [r for r in rows if r["agent_rounds"]]
        if observed:
            output.metrics["moves_per_agent_round"] = clustered_ratio(
                [r["moves"] for r in observed], [r["agent_rounds"] for r in observed],
                [r["scenario"] for r in observed])
        groups: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            groups[row["attribute"]].update(row["ratios"])
        for attribute, values in sorted(groups.items(), key=lambda item: str(item[0])):
            for value in sorted(values):
                chosen = [r for r in rows if r["attribute"] == attribute and value in r["ratios"]]
                output.metrics[f"influence_share[{attribute}={value}]"] = clustered_mean(
                    [r["ratios"][value] for r in chosen], [r["scenario"] for r in chosen])
            if len(values) == 2:
                first, second = sorted(values)
                pairs = [r for r in rows if r["attribute"] == attribute
                         and first in r["ratios"] and second in r["ratios"]]
                primary = attribute == "gender" or "gender" not in groups
                name = "persuasion_gap" if primary else f"persuasion_gap[{attribute}]"
                high = [r["ratios"][first] for r in pairs]
                low = [r["ratios"][second] for r in pairs]
                clusters = [r["scenario"] for r in pairs]
                if len(pairs) == 1:  # the permutation test needs two pairs; report the value
                    output.metrics[name] = clustered_mean(
                        [h - lo for h, lo in zip(high, low, strict=True)], clusters)
                elif pairs:
                    # paired_difference gives second − first, so pass them swapped.
                    output.metrics[name] = paired_difference(low, high, clusters)
                output.notes.append(f"influence: {name} = share ratio of {attribute}={first} "
                                    f"minus {attribute}={second}")
        anchored = [r for r in rows if r["anchor"] is not None]
        if anchored:
            output.metrics["first_speaker_anchor"] = clustered_mean(
                [r["anchor"] for r in anchored], [r["scenario"] for r in anchored])
        openers = [(value, r["scenario"]) for r in rows for value in r["openers"]]
        if openers:
            output.metrics["round_opener_anchor"] = clustered_mean(
                [v for v, _ in openers], [s for _, s in openers])
