"""The 'graph' command: a scenario's compiled conversation graph and who hears whom, as Mermaid
(see agentsim.orchestrator.drawing)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agentsim.cli.checks import path as _path
from agentsim.cli.common import console as _console
from agentsim.cli.common import escape as _escape


def add_graph_parser(commands: argparse._SubParsersAction) -> None:
    """The 'graph' command's arguments."""
    graph = commands.add_parser("graph", help="draw a scenario's compiled graph and topology "
                                "(Mermaid)")
    graph.add_argument("scenario", type=Path, metavar="SCENARIO")
    graph.add_argument("--out", type=_path, metavar="DIR",
                       help="write <id>.graph.mmd and <id>.topology.mmd here instead of printing")
    graph.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_graph(args: argparse.Namespace) -> int:
    """Print (or save) the drawings of every scenario in the file or folder."""
    from rich.table import Table

    from agentsim.orchestrator.drawing import (
        graph_mermaid,
        hearing_graph,
        save_drawings,
        topology_mermaid,
    )
    from agentsim.scenario.loader import load_scenarios

    scenarios = [s for _, s in load_scenarios([args.scenario])]
    if args.out:
        written = [str(p) for s in scenarios for p in save_drawings(s, args.out)]
        if args.json:
            print(json.dumps({"written": written}))
        else:
            _console().print("\n".join(_escape(p) for p in written))
        return 0
    drawings = {s.id: {"graph": graph_mermaid(s), "topology": topology_mermaid(s),
                       "hears": {b: sorted(a for a, _ in hearing_graph(s).in_edges(b))
                                 for b in hearing_graph(s).nodes}} for s in scenarios}
    if args.json:
        print(json.dumps(drawings))
        return 0
    console = _console()
    for scenario_id, drawing in drawings.items():
        console.rule(f"{_escape(scenario_id)}: compiled graph")
        console.print(_escape(drawing["graph"]), highlight=False)
        console.rule(f"{_escape(scenario_id)}: who hears whom")
        table = Table("listener", "hears")
        for listener, speakers in drawing["hears"].items():
            table.add_row(_escape(listener), _escape(", ".join(speakers) or "(nobody)"))
        console.print(table)
        console.print(_escape(drawing["topology"]), highlight=False)
    return 0
