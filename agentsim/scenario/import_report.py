"""What an import of published data did, shared by every importer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ImportReport:
    """What one import did: files written, rows skipped as (1-based data row, reason) and notes
    on converted rows as (row, note): glued scenes, dropped stray text, genders inferred from the
    design, personas without a gender, a model's answer."""

    source: str
    layout: str
    written: list[Path]
    skipped: list[tuple[int, str]]
    notes: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Number of data rows read."""
        return len(self.written) + len(self.skipped)

    def summary(self) -> str:
        """One line per outcome, e.g. for a command-line report."""
        converted = f"{len(self.written)} of {self.rows} rows converted"
        lines = [f"{self.source} ({self.layout}): {converted}"]
        lines += [f"  row {row}: {reason}" for row, reason in self.skipped]
        lines += [f"  row {row} note: {note}" for row, note in self.notes]
        return "\n".join(lines)
