"""Rejected manifest lines: a Ground Truth line an import could not take, kept with its errors as Custom
Labels keeps it (ListDatasetEntries with HasErrors, DatasetStats.ErrorEntries, the console's dataset page)
until a line for the same source-ref replaces it or the user deletes it. It never reaches training: it is
not a dataset entry (ports.py, storage/projects.py, core/entries.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LineError:
    """One reason a line was rejected: a Custom Labels code (ERROR_INVALID_IMAGE …) and a message."""

    code: str
    message: str


@dataclass(frozen=True)
class NewRejectedLine:
    source_ref: str | None  # None when the line names none (not JSON, no source-ref)
    line: str  # the text as given
    errors: tuple[LineError, ...]


@dataclass(frozen=True)
class RejectedLine:
    id: int
    dataset_id: int
    source_ref: str | None
    line: str
    errors: tuple[LineError, ...]
    created_at: datetime
