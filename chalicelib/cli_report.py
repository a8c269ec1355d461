"""What the command-line client prints and writes: a line per file, ``--out`` JSON, ``--csv``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.cli import Item

CSV_COLUMNS = ("file", "job_id", "status", "label", "probability", "categories", "error")


def summary(items: Sequence[Item]) -> Iterator[str]:
    """One line per file: status, top label and top category, or the reason it failed."""
    for item in items:
        top = (item.job.get("predictions") or [{}])[0]
        category = (item.job.get("categories") or [{}])[0]
        if item.status == "SUCCEEDED":
            detail = f"{top['label']} ({top['probability']:.3f})" if top else "no label"
            if category:
                detail += f"\t{category['name']} ({category['probability']:.3f})"
        elif item.error or item.job.get("error"):
            detail = item.error or item.job["error"]["message"]
        else:
            detail = f"job {item.job_id}"
        yield f"{item.path}\t{item.status}\t{detail}"


def write_csv(items: Sequence[Item], path: str) -> None:
    """One row per file: its job, status, top label and categories (``name p; …``)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for i in items:
            top = (i.job.get("predictions") or [{}])[0]
            categories = "; ".join(
                f"{c['name']} {c['probability']:g}" for c in i.job.get("categories") or []
            )
            error = i.error or (i.job.get("error") or {}).get("message")
            row = (i.path, i.job_id, i.status, top.get("label"), top.get("probability"))
            writer.writerow((*row, categories, error))


def write_json(items: Sequence[Item], path: str) -> None:
    """Every file's job as JSON."""
    records: list[dict[str, object]] = [
        {"file": str(i.path), "job_id": i.job_id, "status": i.status, "error": i.error}
        for i in items
    ]
    for record, item in zip(records, items, strict=True):
        record["job"] = item.job or None
    Path(path).write_text(json.dumps(records, indent=2))
