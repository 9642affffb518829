"""Terminal rendering of results (rich). Library code never prints; the CLI calls these."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

# Order and wording of the headline metrics; others follow in name order.
HEADLINE = {
    "bias_first": "bias, first decision",
    "bias_last": "bias, last decision",
    "escalation": "escalation (last − first)",
}


# Metrics that are differences or scores in [-1, 1] show their sign; shares and rates do not.
SIGNED = {"escalation"}


def _fmt(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def metrics_table(metrics: dict[str, dict[str, Any]], title: str = "Metrics") -> Table:
    """A table of metrics with their 95 % intervals and sample sizes."""
    table = Table(title=title, title_justify="left")
    for column in ("metric", "value", "95% CI", "n", "clusters"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    names = [m for m in HEADLINE if m in metrics] + sorted(set(metrics) - set(HEADLINE))
    for name in names:
        m = metrics[name]
        signed = name in SIGNED or name.startswith(("bias", "escalation", "gap", "delta"))
        low, high = _fmt(m.get("ci_low"), signed), _fmt(m.get("ci_high"), signed)
        ci = f"[{low}, {high}]" if m.get("ci_low") is not None else "—"
        style = "bold" if name in HEADLINE else "dim"
        table.add_row(HEADLINE.get(name, name), _fmt(m["value"], signed), ci, str(m["n"]),
                      str(m["clusters"]), style=style)
    return table


def print_run_summary(console: Console, summary: Any) -> None:
    """Print the metrics table, the counts and where the run folder is."""
    results = summary.results
    console.print(metrics_table(results["metrics"]))
    for judge, counts in results.get("counts", {}).items():
        unparsed = counts.get("unparsed") or {}
        decisions = counts.get("decisions") or {}
        if decisions:
            parts = [f"{phase}: {unparsed.get(phase, 0)} of {n}" for phase, n in decisions.items()]
            console.print(f"{judge}: unparsed decisions — " + ", ".join(parts))
    failed = f"{summary.failed} failed" + (
        " (" + ", ".join(f"{k}: {v}" for k, v in summary.errors.items()) + ")"
        if summary.errors else ""
    )
    console.print(f"{summary.conversations} conversations, {failed}")
    for note in results.get("notes", []):
        console.print(f"[dim]{note}[/]")
    console.print(f"Run folder: [bold]{summary.run_dir}[/]")
