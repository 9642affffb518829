"""Layout ``borah-table1``: Borah & Mihalcea (2024), Table 1 — the labels of the assignments.

One row per model × setting × response (× arm when the runs have several, × domain with
``by="domain"``): the shares of neutral, stereotypical and anti-stereotypical assignments and
the bias score (share stereotypical − share anti-stereotypical) with its 95 % interval and the
number of decisions. The response is the agents' ``first`` decision and their ``last`` one
(after the discussion); the no-interaction setting has one decision, reported as ``all``; under
self-reflection there is also the ``reflected`` decision. Every number is the
``assignment_bias`` judge's over the cell's conversations alone (``results.json``'s ``cells``;
per domain, the same judge over each domain's conversations of the cell).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentsim.errors import InputError
from agentsim.tables.runs import RunInput
from agentsim.tables.table import Column, Table, estimate_fields

JUDGE = "assignment_bias"
SHARES = (("neutral", "% neutral"), ("stereotypical", "% stereotypical"),
          ("anti", "% anti-stereotypical"))
# response → the judge's metric key of those decisions
RESPONSES = (("first", "first"), ("reflected", "reflected"), ("last", "last"))
SINGLE = "no-interaction"  # the setting with one decision per conversation
ALL_DOMAINS = "all"


def responses(setting: str, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(response, metric key) of a cell: ``all`` for the single decision of no-interaction,
    else first, reflected and last, those the judge reported."""
    if setting == SINGLE:
        return [("all", "first")] if "bias_first" in metrics else []
    return [(name, key) for name, key in RESPONSES if f"bias_{key}" in metrics]


def response_row(metrics: dict[str, Any], key: str) -> dict[str, Any]:
    """The shares and the score of one response, from a cell's metrics."""
    row: dict[str, Any] = {}
    for share, _ in SHARES:
        fields = estimate_fields(share, metrics.get(f"{key}_{share}"))
        row |= {share: fields[share], f"{share}_ci_low": fields[f"{share}_ci_low"],
                f"{share}_ci_high": fields[f"{share}_ci_high"]}
    score = estimate_fields("score", metrics.get(f"bias_{key}"))
    estimate = metrics.get(f"bias_{key}") or {}
    return row | {"score": score["score"], "ci_low": score["score_ci_low"],
                  "ci_high": score["score_ci_high"], "n": score["score_n"],
                  "clusters": estimate.get("clusters")}


def run_cells(run: RunInput) -> list[dict[str, Any]]:
    """Each cell of the run with its metrics: ``results.json``'s cells, or its one cell."""
    results = run.need_results("borah-table1")
    cells = results.get("cells")
    if cells:
        return cells
    model, setting, arm = run.cells()[0]
    return [{"model": model, "setting": setting, "arm": arm,
             "metrics": results.get("metrics") or {}}]


def domain_metrics(run: RunInput) -> dict[tuple[str, ...], dict[str, Any]]:
    """(model, setting, arm, domain) → the judge's metrics over those conversations: one
    judging pass over the log, nothing written."""
    from agentsim.runs.judging import grouped_metrics

    domain_of = {sid: str((entry.get("data") or {}).get("domain") or "unknown")
                 for sid, entry in (run.manifest.get("scenarios") or {}).items()}
    return grouped_metrics(run.store.run_dir,
                           lambda c: (*c.cell, domain_of.get(c.scenario_id, "unknown")),
                           judges=(JUDGE,))


def borah_table(runs: Sequence[RunInput], by: str | None = None) -> Table:
    """The table over ``runs`` (already checked to share one design); ``by="domain"`` adds a
    row per domain after each cell's overall rows."""
    arms = list(dict.fromkeys(cell[2] for run in runs for cell in run.cells()))
    rows: list[dict[str, Any]] = []
    for run in runs:
        per_domain = domain_metrics(run) if by == "domain" else {}
        for cell in run_cells(run):
            groups = [(ALL_DOMAINS, cell.get("metrics") or {})]
            groups += [(key[3], metrics) for key, metrics in per_domain.items()
                       if tuple(key[:3]) == (cell["model"], cell["setting"], cell["arm"])]
            for domain, metrics in groups:
                for response, key in responses(cell["setting"], metrics):
                    rows.append({"model": run.label(cell["model"]), "arm": cell["arm"],
                                 "setting": cell["setting"], "domain": domain,
                                 "response": response, **response_row(metrics, key)})
    if not rows:
        names = ", ".join(str(run.path) for run in runs)
        raise InputError(f"no {JUDGE} results, which the borah-table1 layout reads "
                         f"(a task-assignment run, judged with {JUDGE}: agentsim judge RUN "
                         f"--judges {JUDGE})", source=names)
    columns = [Column("model", "model"), Column("setting", "setting")]
    columns += [Column("arm", "arm")] if len(arms) > 1 else []
    columns += [Column("domain", "domain")] if by == "domain" else []
    columns += [Column("response", "response")]
    columns += [Column(share, label, "share", f"{share}_ci_low", f"{share}_ci_high",
                       interval=False) for share, label in SHARES]
    columns += [Column("score", "bias score [95% CI]", "signed", "ci_low", "ci_high"),
                Column("n", "n", "count"), Column("clusters", "clusters", "count", shown=False)]
    notes = [("bias score = share stereotypical − share anti-stereotypical, over the decisions "
             "of each row (n); 95% intervals bootstrap whole scenarios (clusters)"),
             ("response: first = each agent's first decision, last = after the discussion, "
             "all = the one decision of the no-interaction setting")]
    if by == "domain":
        notes.append("domain 'all': every domain; each other domain judged alone")
    return Table("borah-table1", "Assignments by label and bias score (Borah & Mihalcea "
                 "2024, Table 1)", columns, rows, notes, sections=("model",),
                 runs=[str(run.path) for run in runs])
