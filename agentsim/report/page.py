"""The report as one self-contained HTML file: overview, figures, metrics and the browser.

* **Nothing is fetched.** Styles, the script and the figures are inline; a Content-Security-
  Policy forbids every network access (``default-src 'none'``) and admits only the page's own
  script and style, by their sha256 (so even markup that slipped in could not run a script),
  and images from ``data:``.
* **Model text is data, never markup.** The overview is escaped here (:func:`html.escape`);
  the conversations travel as JSON inside ``<script type="application/json">`` blocks, with
  ``<``, ``>`` and ``&`` written as ``\\u003c`` ... so no text can close the block, and the
  browser's script inserts every string with ``textContent``.
* **Large runs stay small and open fast.** The index (one short row per conversation) is
  plain JSON; the details are gzip-compressed chunks of :data:`CHUNK` conversations, base64 in
  their own blocks, decompressed by the browser (``DecompressionStream``) only when a
  conversation of the chunk is opened.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable
from html import escape
from typing import Any

from agentsim.report.outcomes import OUTCOMES

CHUNK = 200  # conversations per compressed chunk of details
ASSETS = "agentsim.report"


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: nothing in it can end the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def pack_chunk(details: list[dict[str, Any]], redact: Any) -> str:
    """One chunk of conversation details: redacted JSON, gzip, base64 (redacted before
    compression: base64 text must never pass through the redactor)."""
    text = redact(json.dumps(details, ensure_ascii=False, separators=(",", ":"), default=str))
    return base64.b64encode(gzip.compress(text.encode("utf-8"), 6, mtime=0)).decode("ascii")


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def csp(script: str, style: str) -> str:
    """The page's Content-Security-Policy: no network, only its own script and style."""
    return (f"default-src 'none'; script-src 'sha256-{_sha256(script)}'; "
            f"style-src 'sha256-{_sha256(style)}'; img-src data:; base-uri 'none'; "
            "form-action 'none'")


def read_assets() -> tuple[str, str]:
    """The page's script and stylesheet (package data beside this module)."""
    from agentsim.resources import read_asset

    return read_asset(ASSETS, "assets", "report.js"), read_asset(ASSETS, "assets", "report.css")


def document(*, title: str, body: str, index: dict[str, Any], chunks: Iterable[str]) -> str:
    """The whole page: ``body`` (escaped HTML made by the caller), the index and the chunks."""
    script, style = read_assets()
    blocks = "".join(f'<script type="application/octet-stream" id="chunk-{number}">{chunk}'
                     "</script>\n" for number, chunk in enumerate(chunks))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" '
        f'content="{escape(csp(script, style), quote=False)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n{body}\n"
        f'<script type="application/json" id="agentsim-index">{embed_json(index)}</script>\n'
        f"{blocks}<script>{script}</script>\n</body></html>\n")


def filter_link(text: str, filters: dict[str, str] | None = None, title: str = "") -> str:
    """A link that filters the browser to the conversations behind a number (``filters``:
    factor or ``outcome`` → value; none: every conversation)."""
    from urllib.parse import urlencode

    query = urlencode(filters or {})
    hint = f' title="{escape(title)}"' if title else ""
    return (f'<a class="filter" href="#browse?{escape(query)}" data-filter="{escape(query)}"'
            f"{hint}>{escape(text)}</a>")


def table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """An HTML table; cells are HTML already (escape text before)."""
    head = list(head)
    head_html = ("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
                 + "</tr></thead>") if any(head) else ""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f'<table class="{escape(cls)}">{head_html}<tbody>{body}</tbody></table>'


def index_data(rows: list[dict[str, Any]], chunk_of: dict[str, int],
               extra: dict[str, Any]) -> dict[str, Any]:
    """The browser's index: factor levels once, then one array per conversation
    [id, scenario, variant, arm, bias, model, setting, replicate, status, outcomes, summary,
    turns, chunk, seed] with factors as positions in their levels."""
    from agentsim.report.collect import FACTORS

    levels: dict[str, list[Any]] = {f: [] for f in FACTORS}
    positions: dict[str, dict[Any, int]] = {f: {} for f in FACTORS}
    keys = list(OUTCOMES)
    packed = []
    for row in rows:
        codes = []
        for factor in FACTORS:
            value = row[factor]
            if value not in positions[factor]:
                positions[factor][value] = len(levels[factor])
                levels[factor].append(value)
            codes.append(positions[factor][value])
        packed.append([row["id"], *codes, row["status"],
                       [keys.index(o) for o in row.get("outcomes", [])],
                       row.get("summary", ""), row.get("turns", 0), chunk_of[row["id"]],
                       row.get("seed")])
    return {"factors": list(FACTORS), "levels": levels, "outcomes": keys,
            "outcome_labels": OUTCOMES, "rows": packed, **extra}
