"""The report's static part, as escaped HTML: what was run, how it went, the headline numbers
in words, the figures and every metric; each count links to the conversations behind it.

Models and endpoints pass through the project's redactor (:func:`agentsim.models.client.redact`)
before they are shown: an endpoint's URL never carries a key into a report.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from agentsim.core.metrics import MetricRecord
from agentsim.report.collect import RunData
from agentsim.report.page import filter_link, table
from agentsim.report.plots import Figure, records
from agentsim.report.words import headlines, sentence

# Breakdown dimensions of a metric that are also filters of the browser.
FILTERS = ("scenario", "variant", "arm", "bias", "model", "setting")
# Metrics whose conversations are best shown by an outcome (besides their breakdown).
METRIC_OUTCOMES = {"bias_first": "stereotyped_first", "first_stereotypical": "stereotyped_first",
                   "bias_last": "stereotyped_last", "last_stereotypical": "stereotyped_last",
                   "escalation": "bias_rose", "first_to_last": "bias_rose",
                   "self_correction_rate": "changed_after_reflection",
                   "accuracy": "wrong_diagnosis", "no_diagnosis_rate": "no_diagnosis"}
SCRIPTED_NOTE = ("Scripted model: these numbers test the machinery; they are not a finding "
                 "about bias in any language model.")
SMALL_NOTE = ("The embedded SmolLM2-135M model is a smoke test of the pipeline, not a finding "
              "about bias in language models.")


def _redact(text: Any) -> str:
    from agentsim.models.client import redact

    return redact(str(text))


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def metric_filters(record: MetricRecord, arm: str | None = None) -> dict[str, str]:
    """The browser filters of the conversations a metric rests on."""
    found = {k: v for k, v in record.breakdown.items() if k in FILTERS}
    if arm:
        found["arm"] = arm
    outcome = METRIC_OUTCOMES.get(record.metric.removeprefix("delta_"))
    if outcome:
        found["outcome"] = outcome
    return found


def _estimate(record: MetricRecord) -> str:
    interval = ("" if record.ci_low is None or record.ci_high is None
                else f" [{_fmt(record.ci_low)}, {_fmt(record.ci_high)}]")
    return escape(f"{_fmt(record.estimate)}{interval}")


def _facts(data: RunData) -> str:
    m = data.manifest
    jobs = data.index
    rows = [("run", escape(str(m.get("run_id")))), ("status", escape(str(m.get("status")))),
            ("created", escape(f"{m.get('created')} (finished {m.get('finished') or '—'})")),
            ("agentsim", escape(f"{m.get('agentsim_version')}, Python {m.get('python')}")),
            ("run seed", escape(str(m.get("seed"))))]
    if m.get("source"):
        rows.append(("imported from", escape(_redact(m["source"]))))
    parent = m.get("parent")
    if parent:
        rows.append(("fork of", escape(f"run {parent['run_id']} ({parent['run_dir']}), "
                                       f"conversation {parent['conversation_id']}, from turn "
                                       f"{parent['from_turn']}: earlier turns are the parent's, "
                                       "copied verbatim")))
    models = m.get("models") or {}
    rows.append(("models per role", "<br>".join(escape(_redact(f"{role}: {model}"))
                                                for role, model in models.items()) or "—"))
    endpoints = m.get("endpoints") or {}
    rows.append(("endpoints", "<br>".join(
        escape(_redact(f"{name}: " + ", ".join(f"{k}={v}" for k, v in e.items()
                                                if k != "model" and v is not None)))
        for name, e in endpoints.items() if isinstance(e, dict)) or "—"))
    for factor, words in (("arm", "arms"), ("setting", "settings"), ("model", "models run"),
                          ("bias", "bias conditions")):
        counts = Counter(str(row[factor]) for row in jobs)
        rows.append((words, ", ".join(filter_link(f"{level} ({n})", {factor: level})
                                      for level, n in counts.items()) or "—"))
    replicates = sorted({row["replicate"] for row in jobs})
    rows.append(("replicates", escape(f"{len(replicates)} ({', '.join(map(str, replicates[:10]))}"
                                      f"{', …' if len(replicates) > 10 else ''})")))
    rows.append(("judges", escape(", ".join(m.get("judges") or []) or "—")))
    for warning in m.get("warnings") or []:
        rows.append(("warning", escape(warning)))
    return table(("", ""), ((f"<b>{escape(k)}</b>", v) for k, v in rows), "facts")


CELL_METRICS = ("bias_first", "bias_last", "escalation", "flip_rate", "accuracy",
                "selection_gap")


def _study(data: RunData) -> str:
    """The study a run was made from: its question, hypotheses, file and hash, and every cell
    of the design judged alone, each number linking to the cell's conversations."""
    study = data.manifest.get("study")
    if not study:
        return ""
    spec = study.get("data") or {}
    rows = [("study", escape(str(study.get("id")))),
            ("file", escape(f"{_redact(study.get('path'))} (sha256 {study.get('sha256')})"))]
    if spec.get("title"):
        rows.append(("title", escape(spec["title"])))
    if spec.get("description"):
        rows.append(("question", escape(spec["description"])))
    for hypothesis in spec.get("hypotheses") or []:
        rows.append(("hypothesis", escape(hypothesis)))
    controls = study.get("controls") or {}
    rows.append(("controls", escape(", ".join(f"{k} {v}" for k, v in controls.items())
                                    or "— (one cell)")))
    for name, value in (study.get("overrides") or {}).items():
        rows.append((f"replaced for this run: {name}", escape(_redact(value))))
    html = "<h3>Study</h3>" + table(("", ""), ((f"<b>{escape(k)}</b>", v) for k, v in rows),
                                    "study")
    cells = (data.results or {}).get("cells") or []
    shown = [m for m in CELL_METRICS if any(m in (c.get("metrics") or {}) for c in cells)]
    if cells:
        html += "<h3>Cells of the design, each judged alone</h3>" + table(
            ("model", "setting", "arm", "conversations", *shown),
            ((escape(str(c["model"])), escape(str(c["setting"])), escape(str(c["arm"])),
              filter_link(str(c.get("conversations")), _cell_filter(c)),
              *(_cell_value(c, m) for m in shown)) for c in cells), "cells")
    return html


def _cell_filter(cell: dict[str, Any], metric: str | None = None) -> dict[str, str]:
    found = {k: str(cell[k]) for k in ("model", "setting", "arm")}
    outcome = METRIC_OUTCOMES.get(metric or "")
    return {**found, "outcome": outcome} if outcome else found


def _cell_value(cell: dict[str, Any], metric: str) -> str:
    found = (cell.get("metrics") or {}).get(metric)
    if not found or found.get("value") is None:
        return "—"
    interval = ("" if found.get("ci_low") is None else
                f" [{_fmt(found['ci_low'])}, {_fmt(found['ci_high'])}]")
    return filter_link(f"{_fmt(found['value'])}{interval} n={found.get('n')}",
                       _cell_filter(cell, metric))


def _scenarios(data: RunData) -> str:
    m = data.manifest
    counts = Counter(row["scenario"] for row in data.index)
    variants = m.get("variants") or {}
    rows = []
    for sid, entry in (m.get("scenarios") or {}).items():
        protocol = ((entry.get("data") or {}).get("protocol") or {}).get("name", "discussion")
        names = [v.get("id") for v in variants.get(sid, []) if isinstance(v, dict)]
        rows.append((filter_link(sid, {"scenario": sid}), escape(str(protocol)),
                     ", ".join(filter_link(v, {"scenario": sid, "variant": v}) for v in names)
                     or "base", escape(str(counts.get(sid, 0))),
                     escape(str(entry.get("hash", ""))[:16]),
                     escape(str(entry.get("preset") or "—")),
                     escape(str(entry.get("prompts_sha256") or "—")[:16]),
                     escape(_redact(entry.get("path", "")))))
    return table(("scenario", "protocol", "variants", "conversations", "hash", "preset",
                  "prompts sha256", "source"), rows, "scenarios")


def _health(data: RunData) -> str:
    status = Counter(row["status"] for row in data.index)
    parts = [filter_link(f"{len(data.index)} conversations", {})]
    for key, words in (("ok", "finished"), ("failed", "failed"), ("unfinished", "not finished")):
        if status.get(key):
            parts.append(filter_link(f"{status[key]} {words}", {"status": key}))
    html = "<p>" + ", ".join(parts) + ".</p>"
    failures = (data.results or {}).get("failures") or {}
    if failures:
        html += table(("failure", "count", "example"), (
            (escape(kind), filter_link(str(item.get("count")), {"status": "failed"}),
             escape(_redact(str(item.get("example", ""))[:300])))
            for kind, item in failures.items()), "failures")
    elif data.failures:
        html += table(("failure", "count"), ((escape(k), filter_link(str(n), {"status": "failed"}))
                                             for k, n in data.failures.items()), "failures")
    return html


def _tokens(data: RunData) -> str:
    usage = (data.results or {}).get("usage") or {}
    if usage.get("models") or usage.get("judges"):  # the judging pass's count, with costs
        def cost(value: Any) -> str:
            return "unknown" if value is None else f"${value:.4f}"

        rows = [(escape(_redact(model) + (" (judge)" if judge else "")),
                 *(escape(f"{u.get(k, 0):,}") for k in
                   ("calls", "prompt_tokens", "completion_tokens", "cached_calls",
                    "failed_calls")), escape(cost(u.get("cost"))))
                for judge, group in ((False, usage.get("models") or {}),
                                     (True, usage.get("judges") or {}))
                for model, u in group.items()]
        total = usage.get("total") or {}
        unpriced = usage.get("unpriced") or []
        note = (f"Total cost {cost(total.get('cost'))} at litellm's prices or the models "
                "config's (cached calls cost nothing)"
                + (f"; no price known for {', '.join(map(_redact, unpriced))}" if unpriced
                   else "") + ".")
        return ("<h3>Model calls, tokens and cost</h3>" + table(
            ("model", "calls", "prompt tokens", "completion tokens", "cached", "failed",
             "cost"), rows, "tokens") + f'<p class="dim">{escape(note)}</p>')
    if not data.tokens:
        return "<p class=\"dim\">No model calls in the log (an imported transcript, or a " \
               "run without calls).</p>"
    return "<h3>Model calls and tokens</h3>" + table(
        ("model", "calls", "prompt tokens", "completion tokens", "cached", "failed"),
        ((escape(_redact(model)), *(escape(str(t.get(k, 0))) for k in
          ("calls", "prompt_tokens", "completion_tokens", "cached", "failed")))
         for model, t in data.tokens.items()), "tokens") + \
        "<p class=\"dim\">Cost: not recorded (a run judged before usage was counted).</p>"


def _headlines(data: RunData, found: list[MetricRecord]) -> str:
    rows = [(escape(h.record.name), filter_link(_estimate(h.record), metric_filters(h.record),
                                                "show the conversations behind it"),
             escape(str(h.record.n)), escape(_fmt(h.record.p)), escape(h.sentence))
            for h in headlines(found)]
    comparison = data.comparison or {}
    control = comparison.get("control", "none")
    from agentsim.analysis.compare import effect_label, split_name
    from agentsim.core.metrics import records_of

    for record in records_of("compare", comparison.get("metrics") or {}, unnamed="arm"):
        if not record.metric.startswith("delta_"):
            continue
        _, arm = split_name(record.name)
        label = effect_label(record.metric).removeprefix("Δ ")
        rows.append((escape(record.name), filter_link(_estimate(record),
                                                      metric_filters(record, arm)),
                     escape(str(record.n)), escape(_fmt(record.p)),
                     escape(sentence(record, arm=arm, control=control, label=label))))
    if not rows:
        return "<p class=\"dim\">No headline metrics: the run has not been judged, or its " \
               "judges report none of them.</p>"
    return table(("metric", "estimate [95% CI]", "n", "p", "in words"), rows, "headlines")


def _all_metrics(found: list[MetricRecord]) -> str:
    rows = [(escape(r.judge or "—"), escape(r.name),
             filter_link(_estimate(r), metric_filters(r)), escape(str(r.n)),
             escape(_fmt(r.p)), escape(r.method or "")) for r in found]
    return (f"<details><summary>All {len(rows)} metrics</summary>"
            + table(("judge", "metric", "estimate [95% CI]", "n", "p", "method"), rows,
                    "metrics") + "</details>")


def _figure(f: Figure, tile: bool = False) -> str:
    caption = "" if tile else f"<figcaption><b>{escape(f.title)}.</b> {escape(f.caption)}" \
                              "</figcaption>"
    cls = ' class="tile"' if tile else ""
    return (f'<figure id="fig-{escape(f.key)}" data-figure="{escape(f.key)}"{cls}>'
            f"{f.svg}{caption}</figure>")


def _figures(figures: list[Figure]) -> str:
    if not figures:
        return "<p class=\"dim\">No figure: the run holds none of their data.</p>"
    # The measurements first; the drawings of the setups (one per scenario) as small tiles.
    plots = [f for f in figures if not f.key.startswith(("topology-", "graph-"))]
    graphs = [f for f in figures if f.key.startswith("graph-")]
    tiles = [f for f in figures if f.key.startswith("topology-")]
    html = "".join(_figure(f) for f in plots)
    if graphs or tiles:
        html += ("<h3>Setups: the compiled graph and who hears whom</h3>"
                 + "".join(_figure(f) for f in graphs))
    if tiles:
        html += ("<p class=\"dim\">Who hears whom in each scenario: an arrow a → b when b "
                 "hears what a says.</p><div class=\"tiles\">"
                 + "".join(_figure(f, tile=True) for f in tiles) + "</div>")
    return html


def _banner(data: RunData) -> str:
    models = [str(m) for m in (data.manifest.get("models") or {}).values()]
    models += [row["model"] for row in data.index[:1]]
    notes = []
    if any("scripted/" in m for m in models):
        notes.append(SCRIPTED_NOTE)
    if any("local/smollm2" in m for m in models):
        notes.append(SMALL_NOTE)
    return "".join(f'<p class="banner">{escape(n)}</p>' for n in notes)


def body(data: RunData, figures: list[Figure], notes: list[str]) -> str:
    """The report's HTML body: overview, headline metrics, figures, metrics, notes and the
    conversation browser's frame (filled by the page's script)."""
    found = records(data)
    results = data.results or {}
    all_notes = list(results.get("notes") or []) + list((data.comparison or {}).get("notes")
                                                        or []) + notes
    run_id = escape(str(data.manifest.get("run_id")))
    sections = [
        (f'<header><h1>agentsim report <span class="dim">run {run_id}</span></h1>'
         f"{_banner(data)}</header>"),
        ('<nav><a href="#overview">Overview</a> <a href="#headlines">Headline metrics</a> '
         '<a href="#figures">Figures</a> <a href="#scenarios">Scenarios</a> '
         '<a href="#browse" class="filter" data-filter="">Conversations</a></nav>'),
        (f'<section id="overview"><h2>Overview</h2>{_facts(data)}{_study(data)}'
         f"{_health(data)}</section>"),
        (f'<section id="headlines"><h2>Headline metrics</h2>{_headlines(data, found)}'
         f"{_all_metrics(found) if found else ''}</section>"),
        f'<section id="figures"><h2>Figures</h2>{_figures(figures)}</section>',
        (f'<section id="scenarios"><h2>Scenarios</h2>{_scenarios(data)}{_tokens(data)}'
         "</section>"),
    ]
    if all_notes:
        sections.append("<section id=\"notes\"><h2>Notes</h2><ul>"
                        + "".join(f"<li>{escape(_redact(n))}</li>" for n in all_notes)
                        + "</ul></section>")
    sections.append('<section id="browse"><h2>Conversations</h2><div id="filters"></div>'
                    '<div id="pager"></div><div id="list"></div><div id="detail"></div>'
                    '<noscript>The conversation browser needs JavaScript.</noscript></section>')
    return "\n".join(sections)
