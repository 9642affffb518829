"""The report's figures, each drawn only when its data exist in the run.

Estimates come from ``results.json`` (the judges' metric records) and ``comparison.json`` (the
arms' paired effects); the one exception is the escalation picture of a run whose
conversations differ by arm, model or setting, which the trajectory judge reports pooled: its
per-group points are computed here from the judge's own per-agent verdicts (scores by round),
with the same estimator (a ratio of per-scenario totals with a cluster bootstrap), so a run
with one group draws exactly the judge's numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agentsim.core.metrics import MetricRecord, records_from_results
from agentsim.report.collect import RunData
from agentsim.report.svg import (
    Point,
    Series,
    flow_chart,
    forest_chart,
    interval_chart,
    network_chart,
)

MAX_DRAWN_SCENARIOS = 24  # topologies drawn; a larger run lists the rest by name
BIAS_SCALE = "bias (+1 stereotyped, −1 anti)"


@dataclass
class Figure:
    """One plot of the report: its title, the SVG and a caption in words."""

    key: str
    title: str
    svg: str
    caption: str


def records(data: RunData) -> list[MetricRecord]:
    """The run's metric records (none before it is judged)."""
    return records_from_results(data.results) if data.results else []


def point(record: MetricRecord) -> Point:
    """A record as a plotted point."""
    return Point(record.estimate, record.ci_low, record.ci_high, record.n)


def figures(data: RunData) -> tuple[list[Figure], list[str]]:
    """Every figure the run has data for, and notes on what was left out."""
    found: list[Figure] = []
    notes: list[str] = []
    rows = records(data)
    for make in (_escalation, _label_shares, _forest, _flips, _clinical, _influence):
        found += make(data, rows)
    found += _drawings(data, notes)
    return found, notes


def _by(rows: Iterable[MetricRecord], judge: str, metric: str,
        dimension: str) -> dict[str, MetricRecord]:
    """Records of one metric with exactly one breakdown ``dimension``: value → record."""
    return {r.breakdown[dimension]: r for r in rows if r.judge == judge and r.metric == metric
            and list(r.breakdown) == [dimension]}


def _round_order(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda r: (r == "final", int(r) if r.isdigit() else 0))


def _escalation(data: RunData, rows: list[MetricRecord]) -> list[Figure]:
    pooled = _by(rows, "trajectory", "bias", "round")
    groups = data.varying()
    if groups and data.trajectories:
        series = _group_trajectories(data, groups)
        rounds = _round_order({r for s in series for r in s.points})
        label = " × ".join(groups)
        caption = (f"Bias of every agent's decision after each round, per {label}, from the "
                   "trajectory judge's per-agent verdicts (+1 fully stereotyped, −1 fully "
                   "anti-stereotyped); 95 % intervals resample scenarios.")
    elif pooled:
        rounds = _round_order(pooled)
        series = [Series("all", {r: point(pooled[r]) for r in rounds})]
        caption = ("Bias of every agent's decision after each round (round 0: first "
                   "decisions, final: last; +1 fully stereotyped, −1 fully anti-stereotyped), "
                   "as the trajectory judge measured it; 95 % intervals resample scenarios.")
    elif groups and _cells(data):
        rounds = ["first", "last"]
        series = [Series(label, {key: _estimate_of(metrics[f"bias_{key}"]) for key in rounds
                                 if f"bias_{key}" in metrics})
                  for label, metrics in _cells(data, groups)]
        series = [s for s in series if s.points]
        if not series:
            return []
        caption = (f"Bias of first and last decisions per {' × '.join(groups)} "
                   "(assignment_bias, each cell judged alone; +1 fully stereotyped, −1 fully "
                   "anti-stereotyped); 95 % intervals resample scenarios. Run with --probes "
                   "for every round.")
    else:
        first = [r for r in rows if r.metric in ("bias_first", "bias_last") and not r.breakdown]
        if len(first) < 2:
            return []
        rounds = ["first", "last"]
        series = [Series("all", {r.metric.removeprefix("bias_"): point(r) for r in first})]
        caption = "Bias of first and last decisions (assignment_bias); run with --probes " \
                  "for every round."
    chart = interval_chart(rounds, series, title="Bias per round (escalation)",
                           y_label=BIAS_SCALE)
    return [Figure("escalation", "Bias per round", chart, caption)]


def _group_trajectories(data: RunData, factors: list[str]) -> list[Series]:
    """Per group of ``factors``: each round's bias over agents, clustered by scenario."""
    from agentsim.stats.clusters import ClusterTotals
    from agentsim.stats.inference import totals_ratio

    totals: dict[str, dict[str, ClusterTotals]] = defaultdict(lambda: defaultdict(ClusterTotals))
    for row in data.index:
        group = " · ".join(str(row[f]) for f in factors)
        for scores in data.trajectories.get(row["id"], ()):
            for round_, score in scores.items():
                if score is not None:
                    totals[group][str(round_)].add(float(score), row["scenario"])
    return [Series(group, {r: _estimate(totals_ratio(t)) for r, t in by_round.items()})
            for group, by_round in totals.items()]


def _estimate(estimate: Any) -> Point:
    return _estimate_of(estimate.as_dict())


def _estimate_of(data: dict[str, Any]) -> Point:
    """A metric as results.json holds it, as a plotted point."""
    return Point(data.get("value"), data.get("ci_low"), data.get("ci_high"), data.get("n"))


def _cells(data: RunData, factors: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(label, metrics) of each cell of the design judged alone (results.json ``cells``),
    labelled by the ``factors`` that vary (default: every varying one)."""
    factors = factors if factors is not None else data.varying()
    cells = (data.results or {}).get("cells") or []
    return [(" · ".join(str(cell.get(f, "")) for f in factors) or "all",
             cell.get("metrics") or {}) for cell in cells]


def _label_shares(data: RunData, rows: list[MetricRecord]) -> list[Figure]:
    labels = ("stereotypical", "neutral", "anti")
    phases = ("first", "reflected", "last")
    if data.varying() and _cells(data):  # a design: each cell's shares, not the pooled ones
        series = [Series(f"{label} · {phase}", {name: _estimate_of(metrics[f"{phase}_{name}"])
                                               for name in labels
                                               if f"{phase}_{name}" in metrics})
                  for label, metrics in _cells(data) for phase in phases]
    else:
        found = {r.metric: r for r in rows if r.judge == "assignment_bias" and not r.breakdown}
        series = [Series(phase, {label: point(found[f"{phase}_{label}"]) for label in labels
                                 if f"{phase}_{label}" in found})
                  for phase in phases]
    series = [s for s in series if s.points]
    if not series:
        return []
    chart = interval_chart(list(labels), series, title="Labels of first and last decisions",
                           y_label="share of decisions", reference=None)
    return [Figure("labels", "First vs last label shares", chart,
                   "Share of decisions labelled stereotypical, neutral or anti-stereotypical "
                   "(assignment_bias), first decisions against last (and after reflection).")]


def _forest(data: RunData, rows: list[MetricRecord]) -> list[Figure]:
    if not data.comparison:
        return []
    from agentsim.analysis.compare import effect_label, split_name

    panels: dict[str, list[tuple[str, Point, float | None]]] = {}
    for name, value in (data.comparison.get("metrics") or {}).items():
        if not name.startswith("delta_"):
            continue
        effect, arm = split_name(name)
        panels.setdefault(effect_label(effect), []).append(
            (arm, Point(value.get("value"), value.get("ci_low"), value.get("ci_high"),
                        value.get("n")), value.get("p")))
    if not panels:
        return []
    controls = data.comparison.get("controls") or {"arm": data.comparison.get("control",
                                                                             "none")}
    against = ", ".join(f"{factor} {level}" for factor, level in controls.items())
    what = "arm" if set(controls) == {"arm"} else "condition"
    chart = forest_chart(list(panels.items()), title=f"Effect of each {what} vs {against}")
    return [Figure("forest", f"Paired effects of each {what} (forest plot)", chart,
                   f"Mean paired difference {what} − control ({against}) over matched "
                   "units, 95 % intervals resampling scenarios; p Holm-corrected over the "
                   "comparison.")]


def _flips(data: RunData, rows: list[MetricRecord]) -> list[Figure]:
    kinds = _by(rows, "counterfactual", "flip_rate", "kind")
    placebo = [r for r in rows if r.judge == "counterfactual" and r.metric == "flip_rate_placebo"
               and not r.breakdown]
    if not kinds:
        return []
    points = {kind: point(r) for kind, r in kinds.items()}
    if placebo:
        points["placebo"] = point(placebo[0])
    chart = interval_chart(list(points), [Series("flip rate", points)],
                           title="Counterfactual flip rates against the placebo",
                           y_label="share of decisions that changed", reference=None)
    return [Figure("flips", "Counterfactual flip rates vs placebo", chart,
                   "How often a decision changed when only the manipulated attribute changed "
                   "(per variant kind), beside placebo variants that should change nothing.")]


def _clinical(data: RunData, rows: list[MetricRecord]) -> list[Figure]:
    found = []
    for dimension, words in (("bias", "injected bias"), ("variant", "patient variant")):
        by = _by(rows, "clinical", "accuracy", dimension)
        if not by:
            continue
        chart = interval_chart(list(by), [Series("accuracy", {k: point(r) for k, r in
                                                              by.items()})],
                               title=f"Diagnostic accuracy per {words}", y_label="accuracy",
                               reference=None)
        found.append(Figure(f"accuracy-{dimension}", f"Clinical accuracy per {words}", chart,
                            f"Share of consultations diagnosed correctly per {words} "
                            "(moderator's verdict), 95 % intervals."))
    return found


def _influence(data: RunData, rows: list[MetricRecord]) -> list[Figure]:
    shares = [r for r in rows if r.judge == "influence" and r.metric == "influence_share"
              and len(r.breakdown) == 1]
    if not shares:
        return []
    points = {r.label: point(r) for r in shares}
    chart = interval_chart(list(points), [Series("influence share", points)],
                           title="Influence share by group", y_label="credit share / speaker "
                           "share", reference=1.0)
    return [Figure("influence", "Influence shares by group", chart,
                   "Share of the moves toward a group's proposals over its share of speakers: "
                   "1 is parity, above 1 a group persuades more than its numbers.")]


def _drawings(data: RunData, notes: list[str]) -> list[Figure]:
    """Who hears whom in each scenario, and each distinct compiled graph."""
    from agentsim.orchestrator.drawing import compiled_graph_of, hearing_graph

    found: list[Figure] = []
    graphs: dict[str, list[str]] = {}
    shapes: dict[str, tuple[list[list[str]], list[tuple[str, str, bool]]]] = {}
    scenarios = data.view.scenarios if data.view is not None else {}
    for number, (sid, scenario) in enumerate(scenarios.items()):
        try:
            hears = hearing_graph(scenario)
            compiled = compiled_graph_of(scenario).get_graph()
        except Exception as error:  # noqa: BLE001 - a protocol not installed here
            notes.append(f"{sid}: no drawing ({type(error).__name__}: {error})")
            continue
        if number < MAX_DRAWN_SCENARIOS:
            names = {p.id: p.name for p in scenario.personas}
            nodes = [(n, names.get(n, n), str(d.get("role", ""))) for n, d in
                     hears.nodes(data=True)]
            found.append(Figure(f"topology-{sid}", f"Who hears whom: {sid}",
                                network_chart(nodes, list(hears.edges), title=sid),
                                "An arrow a → b: b hears what a says."))
        edges = sorted((e.source, e.target, bool(e.conditional)) for e in compiled.edges)
        shape = repr(edges)
        graphs.setdefault(shape, []).append(sid)
        shapes[shape] = (_layers(edges), edges)
    if len(scenarios) > MAX_DRAWN_SCENARIOS:
        notes.append(f"who-hears-whom drawn for the first {MAX_DRAWN_SCENARIOS} of "
                     f"{len(scenarios)} scenarios")
    for shape, sids in graphs.items():
        layers, edges = shapes[shape]
        title = f"Compiled graph ({len(sids)} scenario{'s' if len(sids) > 1 else ''})"
        found.append(Figure(f"graph-{sids[0]}", title, flow_chart(layers, edges, title=title),
                            "The conversation graph the scenarios ran on: "
                            + ", ".join(sids) + ". Dashed: a conditional edge."))
    return found


def _layers(edges: list[tuple[str, str, bool]]) -> list[list[str]]:
    """Nodes by their distance from the start (unreached nodes last)."""
    import networkx as nx

    graph = nx.DiGraph((a, b) for a, b, _ in edges)
    start = "__start__" if "__start__" in graph else next(iter(graph), None)
    depth = nx.single_source_shortest_path_length(graph, start) if start is not None else {}
    if "__end__" in graph:  # the end goes last, whatever its shortest path
        depth["__end__"] = max(depth.values(), default=0) + 1
    last = max(depth.values(), default=0) + 1
    layers: dict[int, list[str]] = defaultdict(list)
    for node in graph.nodes:
        layers[depth.get(node, last)].append(node)
    return [sorted(layers[k]) for k in sorted(layers)]
