"""Terminal rendering of results (rich). Library code never prints; the CLI calls these."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
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


def records_data(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The metric records of a results file as JSON data (``--json``'s ``records``); results
    written before records existed get them from their metric names."""
    from agentsim.core.metrics import records_from_results

    return [record.model_dump(mode="json") for record in records_from_results(results)]


def split_breakdowns(results: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict],
                                                      dict[str, dict]]:
    """Overall metrics (key → estimate), breakdowns and paired comparisons (each: group label →
    metric label → estimate), from the results' metric records (see agentsim.core.metrics)."""
    from agentsim.core.metrics import CONTRAST, keyed, records_from_results

    overall: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    comparisons: dict[str, dict[str, Any]] = {}
    for key, record in keyed(records_from_results(results)).items():
        if not record.breakdown:
            overall[key] = record.estimate_dict()
            continue
        # A key is the name, prefixed with the judge when two judges share the name.
        label = key[: len(key) - len(record.name)] + record.metric
        table = comparisons if CONTRAST in record.breakdown else groups
        table.setdefault(record.label, {})[label] = record.estimate_dict()
    return overall, groups, comparisons


def breakdown_table(groups: dict[str, dict[str, Any]], title: str = "By group") -> Table:
    """Metrics per group (variant, bias condition, comparison), one row per metric: value,
    interval, n and p where a test applies."""
    table = Table(title=title, title_justify="left")
    for column in ("group", "metric", "value", "95% CI", "n", "p"):
        table.add_column(column, justify="left" if column in ("group", "metric") else "right")
    for group, metrics in groups.items():
        for index, (name, m) in enumerate(metrics.items()):
            signed = name.startswith(("gap", "bias", "escalation", "delta"))
            ci = (f"[{_fmt(m['ci_low'], signed)}, {_fmt(m['ci_high'], signed)}]"
                  if m.get("ci_low") is not None else "—")
            p = f"{m['p']:.3g}" if m.get("p") is not None else ""
            table.add_row(group if index == 0 else "", name, _fmt(m["value"], signed), ci,
                          str(m["n"]), p, end_section=index == len(metrics) - 1)
    return table


def print_run_summary(console: Console, summary: Any) -> None:
    """Print the metrics tables, the counts, failures and parsing, and where the run is."""
    results = summary.results
    print_metrics(console, results)
    print_parsing(console, results.get("parsing"))
    failed = f"{summary.failed} failed" + (
        " (" + ", ".join(f"{k}: {v}" for k, v in summary.errors.items()) + ")"
        if summary.errors else ""
    )
    console.print(f"{summary.conversations} conversations, {failed}")
    for kind, reason in (results.get("failures") or {}).items():
        console.print(f"[red]  {escape(kind)} × {reason['count']}:[/] "
                      f"{escape(reason['example'][:300])}", soft_wrap=True)
    print_usage(console, results.get("usage"))
    if getattr(summary, "stopped", False) and getattr(summary, "stop_reason", None) == "max_cost":
        console.print(f"[red]Stopped by --max-cost: the spend reached the limit; "
                      f"{summary.not_run} conversations not run.[/] To go on: agentsim resume "
                      f"{escape(str(summary.run_dir))} --max-cost USD (a higher limit)")
    elif getattr(summary, "stopped", False):
        console.print(f"[red]Stopped early by --max-failures: {summary.not_run} conversations "
                      "not run.[/] Fix the cause, then: agentsim resume "
                      f"{escape(str(summary.run_dir))}")
    elif summary.failed or getattr(summary, "not_run", 0):
        console.print("[yellow]Failed conversations are left out of every metric; "
                      f"agentsim resume {escape(str(summary.run_dir))} runs them again.[/]")
    for warning in getattr(summary, "warnings", []):
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    print_skipped(console, results.get("skipped_lines"))
    for note in results.get("notes", []):
        console.print(f"[dim]{escape(note)}[/]")
    console.print(f"Run folder: [bold]{summary.run_dir}[/]")


def print_usage(console: Console, usage: dict[str, Any] | None) -> None:
    """One line per model (judges' apart): calls, cache hits, tokens and cost."""
    for kind, rows in (("", (usage or {}).get("models") or {}),
                       (" (judge)", (usage or {}).get("judges") or {})):
        for model, row in rows.items():
            cost = "cost unknown" if row["cost"] is None else f"${row['cost']:.4f}"
            cached = f", {row['cached_calls']} cached" if row["cached_calls"] else ""
            console.print(f"[dim]{escape(model)}{kind}: {row['calls']} calls{cached}, "
                          f"{row['prompt_tokens']} prompt + {row['completion_tokens']} "
                          f"completion tokens, {cost}[/]", soft_wrap=True)


def print_skipped(console: Console, skipped: dict[str, Any] | None) -> None:
    """Say how many damaged log lines were skipped (--skip-bad-lines), and which."""
    count = (skipped or {}).get("count", 0)
    if not count:
        return
    lines = skipped["lines"]
    shown = ", ".join(str(item["line"]) for item in lines)
    more = "" if count <= len(lines) else f" and {count - len(lines)} more"
    console.print(f"[yellow]warning:[/] {count} damaged line(s) of events.jsonl skipped "
                  f"(lines {shown}{more}); the numbers above leave them out", soft_wrap=True)


def print_parsing(console: Console, parsing: dict[str, Any] | None) -> None:
    """Decisions parsed per persona, when anything was unparsed or read from free text."""
    if not parsing or not parsing.get("decisions"):
        return
    agents = parsing["by_agent"]
    if not parsing["unparsed"] and not parsing["free_text_calls"]:
        console.print(f"[dim]decisions: {parsing['decisions']} of {parsing['decisions']} "
                      "parsed, every one schema-constrained[/]")
        return
    table = Table(title="Decisions per persona", title_justify="left")
    for column in ("persona", "decisions", "unparsed", "share", "constrained calls", "models"):
        table.add_column(column, justify="left" if column in ("persona", "models") else "right")
    for agent, row in agents.items():
        share = row["unparsed_share"]
        table.add_row(escape(agent), str(row["decisions"]), str(row["unparsed"]),
                      "—" if share is None else f"{share:.0%}",
                      f"{row['constrained_calls']} of {row['calls']}",
                      escape(", ".join(f"{m} ({'/'.join(row['modes'])})" for m in row["models"])))
    console.print(table)
    spread = parsing.get("spread") or 0
    if spread >= 0.1:
        console.print(f"[yellow]warning:[/] the unparsed share differs by {spread:.0%} between "
                      "personas: missing decisions are tied to personas and can bias every "
                      "comparison between them")


def print_metrics(console: Console, results: dict[str, Any]) -> None:
    """Print a results file's metrics (overall, breakdowns, paired comparisons) and counts."""
    overall, groups, comparisons = split_breakdowns(results)
    console.print(metrics_table(overall))
    if groups:
        console.print(breakdown_table(groups, "By variant and condition"))
    if comparisons:
        console.print(breakdown_table(comparisons, "Paired differences between variants"))
    for judge, counts in results.get("counts", {}).items():
        decisions, unparsed = counts.get("decisions"), counts.get("unparsed")
        if isinstance(decisions, dict) and decisions:
            unparsed = unparsed if isinstance(unparsed, dict) else {}
            parts = [f"{phase}: {unparsed.get(phase, 0)} of {n}" for phase, n in decisions.items()]
            console.print(f"{judge}: unparsed decisions — " + ", ".join(parts))
            continue
        flat = {k: v for k, v in counts.items() if isinstance(v, int | float | str)}
        if flat:
            console.print(f"[dim]{judge}: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                        for k, v in flat.items()) + "[/]")
