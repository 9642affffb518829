"""The command line: a thin layer over the public API (``agentsim.api``), with its rendering."""

from agentsim.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
