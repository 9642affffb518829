"""``agentsim study power FILE --effect D``: the study's power by simulation. Part of the
command line (see :mod:`agentsim.cli.study`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_power_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``study power``."""
    parser.add_argument("file", type=Path, metavar="FILE", help="a study file")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def cmd_study_power(args: argparse.Namespace) -> int:
    """Print the study's power."""
    raise NotImplementedError("study power")
