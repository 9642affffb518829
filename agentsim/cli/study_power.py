"""``agentsim study power FILE --effect D``: the power of a study as planned and the size
that detects an effect, by simulation of the clustered design and of the sign-flip test the
comparison runs (:mod:`agentsim.studies.power`). Part of the command line (see
:mod:`agentsim.cli.study`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

METRIC_CHOICES = ("escalation", "bias_first", "bias_last", "delta")


def add_power_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``study power``."""
    parser.add_argument("file", type=Path, metavar="FILE", help="a study file")
    parser.add_argument("--effect", type=float, metavar="D", help="the smallest effect worth "
                        "detecting, in the metric's units (default: the study's "
                        "primary.effect)")
    parser.add_argument("--metric", choices=METRIC_CHOICES, help="escalation, bias_first, "
                        "bias_last (is the mean of the control cell ≠ 0) or delta (a paired "
                        "difference between cells; default: the study's primary.metric)")
    parser.add_argument("--measure", default="bias_last",
                        choices=("bias_first", "bias_last", "escalation"),
                        help="what a delta is of (default bias_last)")
    parser.add_argument("--compare", metavar="FACTOR=LEVEL", help="the level a delta compares "
                        "with its factor's control (default: the first factor the study "
                        "varies, its first non-control level), e.g. model=big")
    parser.add_argument("--pilot", type=Path, metavar="RUN", help="a pilot run folder to "
                        "estimate the variance components from")
    parser.add_argument("--sd-between", type=float, metavar="X",
                        help="SD of scenario means (between-scenario)")
    parser.add_argument("--sd-within", type=float, metavar="Y",
                        help="SD of a unit (decision or agent) within its conversation")
    parser.add_argument("--sd-conversation", type=float, metavar="Z",
                        help="SD of conversation means within a scenario (default 0)")
    parser.add_argument("--units-per-conversation", type=float, metavar="M",
                        help="units per conversation (agents' decisions; 1 for a delta of "
                        "settings)")
    parser.add_argument("--alpha", type=float, help="two-sided level (default primary.alpha, "
                        "0.05)")
    parser.add_argument("--power", type=float, help="power wanted (default primary.power, 0.8)")
    parser.add_argument("--family", type=int, default=1, metavar="M", help="judge the test "
                        "at alpha/M, as a Holm correction over M deltas would first (default 1)")
    parser.add_argument("--simulations", type=int, default=1000, metavar="N",
                        help="simulated studies per design point (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_study_power(args: argparse.Namespace) -> int:
    """Print the study's power, the tables over replicates and scenarios, and the size
    recommended."""
    from agentsim.cli.common import console as _console
    from agentsim.cli.common import print_json
    from agentsim.studies.power import study_power

    result = study_power(
        args.file, args.effect, metric=args.metric, measure=args.measure,
        compare=args.compare, pilot=args.pilot, sd_between=args.sd_between,
        sd_within=args.sd_within, sd_conversation=args.sd_conversation,
        units_per_conversation=args.units_per_conversation, alpha=args.alpha,
        power=args.power, family=args.family, simulations=args.simulations, seed=args.seed)
    if args.json:
        print_json(result.as_dict())
        return 0
    print_power(_console(), result)
    return 0


def print_power(console: Any, result: Any) -> None:
    """The components, the planned study's power, the two tables and the recommendation."""
    from rich.table import Table

    from agentsim.cli.common import escape

    c = result.components
    console.print(f"study {escape(result.study)}: {result.metric} ({escape(result.analysed)}), "
                  f"effect {result.effect:+g}, two-sided α {result.alpha:.3g}, target power "
                  f"{result.target:g}", soft_wrap=True)
    counts = (f"; from {c.units} units in {c.conversations} conversations of {c.scenarios} "
              f"scenarios, mean {c.mean:+.3f}" if c.units else "")
    console.print(f"components ({escape(c.source)}): SD between scenarios {c.sd_between:.3f}, "
                  f"between conversations {c.sd_conversation:.3f}, within {c.sd_within:.3f}; "
                  f"{c.units_per_conversation:.2f} units per conversation{counts}",
                  soft_wrap=True)
    console.print(f"as planned: {result.scenarios} scenarios × {result.replicates} "
                  f"replicate(s) ({result.conversations_per_replicate} conversations per "
                  f"replicate): power [bold]{result.power:.2f}[/]", soft_wrap=True)
    # min_width: a two-column table is narrower than its title, which would wrap
    reps = Table(title=f"Power over replicates ({result.scenarios} scenarios)",
                 title_justify="left", min_width=44)
    reps.add_column("replicates", justify="right")
    reps.add_column("power", justify="right")
    for row in result.by_replicates:
        reps.add_row(str(row["replicates"]), f"{row['power']:.2f}")
    reps.add_row("unlimited", f"{result.plateau:.2f}")
    console.print(reps)
    scen = Table(title=f"Power over scenarios ({result.replicates} replicate(s))",
                 title_justify="left", min_width=44)
    for column in ("scenarios", "power"):
        scen.add_column(column, justify="right")
    scen.add_column("")
    for row in result.by_scenarios:
        scen.add_row(str(row["scenarios"]), f"{row['power']:.2f}",
                     "" if row["reachable"] else "the test cannot reach α")
    console.print(scen)
    for note in result.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    rec = result.recommended
    if rec is None:
        console.print("recommended: none found (see the notes)")
    else:
        console.print(f"recommended: {rec['scenarios']} scenarios × {rec['replicates']} "
                      f"replicate(s), power {rec['power']:.2f} ({result.simulations} "
                      f"simulated studies per point, seed {result.seed})", soft_wrap=True)
