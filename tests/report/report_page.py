"""Reading a written report back in tests: its index and its conversation details, decoded as
the page's script decodes them (JSON; base64 of gzip), and its parts by element id."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# A message no page may run: a script element, an image whose error handler runs script, and a
# closing tag that would end a script block it was pasted into.
HOSTILE = ('<script>window.__pwned = "script"</script> and '
           '<img src=x onerror="window.__pwned = \'img\'"> & </script> "quoted"')
BLOCK = re.compile(r'<script type="application/(json|octet-stream)" id="([\w-]+)">(.*?)</script>',
                   re.DOTALL)


def blocks(html: str) -> dict[str, str]:
    """Data blocks of the page: element id → its text."""
    return {ident: text for _, ident, text in BLOCK.findall(html)}


def index_of(path: Path) -> dict[str, Any]:
    """The browser's index of a report file, with each row as a dict of its columns."""
    data = json.loads(blocks(path.read_text(encoding="utf-8"))["agentsim-index"])
    factors = data["factors"]
    rows = []
    for packed in data["rows"]:
        row = {"id": packed[0]}
        row.update({f: data["levels"][f][packed[1 + i]] for i, f in enumerate(factors)})
        rest = packed[1 + len(factors):]
        row.update(status=rest[0], outcomes=[data["outcomes"][k] for k in rest[1]],
                   summary=rest[2], turns=rest[3], chunk=rest[4])
        rows.append(row)
    return {**data, "rows": rows}


def details_of(path: Path) -> dict[str, dict[str, Any]]:
    """Conversation id → its detail record, from every compressed chunk of the page."""
    found = {}
    for ident, text in blocks(path.read_text(encoding="utf-8")).items():
        if ident.startswith("chunk-"):
            for detail in json.loads(gzip.decompress(base64.b64decode(text))):
                found[detail["id"]] = detail
    return found
