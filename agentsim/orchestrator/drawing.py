"""Drawings of a scenario's conversation: the compiled LangGraph graph and who hears whom.

Both are Mermaid text (render with any Mermaid viewer, e.g. GitHub's Markdown). ``agentsim graph
SCENARIO`` prints or saves them, and every run folder keeps them under ``graphs/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx

from agentsim.orchestrator.kernel import plugin_for
from agentsim.scenario.schema import Scenario


def compiled_graph_of(scenario: Scenario):  # -> a compiled LangGraph graph
    """The compiled graph the scenario's conversations run on (its protocol's)."""
    return plugin_for(scenario.protocol.name).graph(scenario)


def graph_mermaid(scenario: Scenario) -> str:
    """Mermaid drawing of the compiled conversation graph."""
    return compiled_graph_of(scenario).get_graph().draw_mermaid()


def hearing_graph(scenario: Scenario) -> nx.DiGraph:
    """Who hears whom between personas: an edge a → b when b hears what a says."""
    return plugin_for(scenario.protocol.name).topology(scenario)


def _node(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def topology_mermaid(scenario: Scenario) -> str:
    """Mermaid drawing of who hears whom (personas grouped by role in a setup)."""
    graph = hearing_graph(scenario)
    names = {p.id: p.name for p in scenario.personas}
    lines = ["graph LR"]
    roles: dict[str, list[str]] = {}
    for node, data in graph.nodes(data=True):
        roles.setdefault(data.get("role", ""), []).append(node)
    for role, members in roles.items():
        if role:
            lines.append(f"  subgraph {_node('role_' + role)}[{role}]")
        lines += [f'    {_node(m)}["{names.get(m, m)}"]' for m in members]
        if role:
            lines.append("  end")
    for a, b in graph.edges:
        arrow = "<-->" if graph.has_edge(b, a) else "-->"
        if arrow == "<-->" and a > b:
            continue  # drawn once from the other end
        lines.append(f"  {_node(a)} {arrow} {_node(b)}")
    return "\n".join(lines) + "\n"


def save_drawings(scenario: Scenario, folder: Path) -> list[Path]:
    """Write ``<id>.graph.mmd`` and ``<id>.topology.mmd`` into ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{scenario.id}.graph.mmd", folder / f"{scenario.id}.topology.mmd"]
    paths[0].write_text(graph_mermaid(scenario), encoding="utf-8")
    paths[1].write_text(topology_mermaid(scenario), encoding="utf-8")
    return paths
