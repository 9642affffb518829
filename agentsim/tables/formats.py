"""The formats of a table: CSV for analysis, Markdown for READMEs, LaTeX for papers, rich for
the terminal.

CSV writes every value as it is: shares as fractions 0–1, each interval bound in its own column
(``ci_low``, ``ci_high``, ...), an empty field for a missing value, no notes. The formats for
reading write shares as percentages (the headers say %), an estimate and its 95 % interval in
one cell (``0.52 [0.43, 0.61]``) and the notes under the table. LaTeX is a ``booktabs`` tabular
(``\\toprule``, ``\\midrule``, ``\\bottomrule``; a ``\\midrule`` between models), every text
escaped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from agentsim.tables.table import Column, Table, clean

FORMATS = ("rich", "csv", "markdown", "latex")
MISSING = "—"


def number(value: Any, kind: str) -> str:
    """One value as the formats for reading write it (MISSING when there is none)."""
    value = clean(value)
    if value is None:
        return MISSING
    if kind == "share":
        return f"{100 * value:.1f}"
    if kind == "signed":
        return f"{value:+.3f}".replace("-", "−")
    if kind == "number":
        return f"{value:.3f}".replace("-", "−")
    if kind == "p":
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    if kind == "count":
        return str(int(value))
    return str(value)


def cell(column: Column, row: dict[str, Any]) -> str:
    """A row's cell of ``column`` for reading: its value, with its interval when shown."""
    text = number(row.get(column.key), column.kind)
    if not (column.interval and column.low and column.high) or text == MISSING:
        return text
    kind = "number" if column.kind == "signed" else column.kind
    low, high = (number(row.get(k), kind) for k in (column.low, column.high))
    return text if MISSING in (low, high) else f"{text} [{low}, {high}]"


def breaks(table: Table) -> list[bool]:
    """For each row, whether it starts a new section (a model unlike the row before's)."""
    keys = [k for k in table.sections if any(c.key == k and c.shown for c in table.columns)]
    previous: tuple | None = None
    out = []
    for row in table.rows:
        current = tuple(row.get(k) for k in keys)
        out.append(previous is not None and current != previous)
        previous = current
    return out


def to_csv(table: Table) -> str:
    """The table as CSV: one header line of keys, then one line per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = table.csv_columns()
    writer.writerow(keys)
    for row in table.rows:
        writer.writerow(["" if clean(row.get(k)) is None else clean(row.get(k)) for k in keys])
    return buffer.getvalue()


def to_markdown(table: Table) -> str:
    """The table as a Markdown pipe table, its title above and its notes below."""
    columns = table.shown_columns()

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    out = [f"**{table.title}**", "", line([c.label for c in columns]),
           "| " + " | ".join("---" if c.kind == "text" else "---:" for c in columns) + " |"]
    out += [line([cell(c, row) for c in columns]) for row in table.rows]
    out += [""] + [f"- {note}" for note in table.notes]
    return "\n".join(out) + "\n"


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                 "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}", "−": "$-$", "Δ": r"$\Delta$", "—": "---",
                 "–": "--", "·": r"$\cdot$", "×": r"$\times$", "<": r"$<$", ">": r"$>$"}


def latex_escape(text: str) -> str:
    """Text safe in LaTeX's text mode: specials escaped, our few symbols spelt in LaTeX."""
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(table: Table) -> str:
    """The table as a booktabs tabular (needs ``\\usepackage{booktabs}``), the title and the
    notes as comments."""
    columns = table.shown_columns()
    spec = "".join("l" if c.kind == "text" else "r" for c in columns)
    out = [f"% {latex_escape(table.title)}", ("% agentsim table --layout "
           f"{table.layout}; needs \\usepackage{{booktabs}}"),
           *(f"% {latex_escape(note)}" for note in table.notes),
           f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
           " & ".join(latex_escape(c.label) for c in columns) + r" \\", r"\midrule"]
    for starts, row in zip(breaks(table), table.rows, strict=True):
        if starts:
            out.append(r"\midrule")
        out.append(" & ".join(latex_escape(cell(c, row)) for c in columns) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def rich_table(table: Table) -> Any:
    """The table as a rich renderable (a section between models), its notes as the caption."""
    from rich.table import Table as RichTable

    columns = table.shown_columns()
    out = RichTable(title=table.title, caption="\n".join(table.notes), caption_justify="left")
    for column in columns:
        text = column.kind == "text"  # numbers and their intervals stay on one line
        out.add_column(column.label, justify="left" if text else "right", no_wrap=not text)
    for starts, row in zip(breaks(table), table.rows, strict=True):
        if starts:
            out.add_section()
        out.add_row(*(cell(c, row) for c in columns))
    return out


def to_rich_text(table: Table, width: int = 160) -> str:
    """The rich table as plain text (no colours), e.g. for a file."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(
        rich_table(table))
    return buffer.getvalue()


RENDERERS: dict[str, Callable[[Table], str]] = {
    "rich": to_rich_text, "csv": to_csv, "markdown": to_markdown, "latex": to_latex}
