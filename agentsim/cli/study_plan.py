"""``agentsim study plan FILE`` (and ``study run --dry-run``): the plan of a study before
anything is paid for. Part of the command line (see :mod:`agentsim.cli.study`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``study plan``."""
    parser.add_argument("file", type=Path, metavar="FILE", help="a study file")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_study_plan(args: argparse.Namespace) -> int:
    """Print the study's plan."""
    raise NotImplementedError("study plan")
