"""`docflow export-truth OUT_DIR`: reviewed documents as an evaluation set in the format of ../shared/eval
(README there): `docs/<tenant>/<file>`, `truth/<tenant>/<stem>.json` and a `manifest.csv`, so that
`docflow eval OUT_DIR/manifest.csv` scores the pipeline against what people confirmed and corrected.

A truth file holds only reviewed fields (a field absent from a truth file is not scored): a reviewed
top-level field, and a reviewed key inside a mapping (`key_values.Date`) with the other keys left out.
A review inside a list (`line_items.0.amount`) is not exported, since the eval scores whole lists; nor is
a value reviewed as absent (a null in the truth means "not scored"). Both are listed in the file's notes.
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docflow.errors import DocflowError
from docflow.pipeline import Runtime
from docflow.store.reviews import ReviewedDocument, parse_path, reviewed_documents, set_path

MANIFEST_COLUMNS = ["path", "doc_type", "truth_path", "source_repo", "license"]


@dataclass
class Exported:
    doc_id: str
    doc_type: str
    path: str  # the document, relative to the output folder
    truth_path: str
    fields: int  # top-level fields in the truth


def truth_of(doc: ReviewedDocument) -> dict[str, Any]:
    """The truth file's content for one reviewed document."""
    fields: dict[str, Any] = {}
    notes: list[str] = []
    for path, review in doc.reviews.items():  # oldest first: a later review of a whole field wins
        parts = parse_path(path)
        if any(isinstance(p, int) for p in parts):
            notes.append(f"{path}: reviewed inside a list, not exported (the eval scores whole lists)")
        elif review.value is None:
            notes.append(f"{path}: reviewed as having no value, not exported")
        else:
            set_path(fields, parts, review.value, strict=False)
    truth: dict[str, Any] = {"doc_type": doc.doc_type, "fields": fields}
    reviewers = sorted({r.reviewer for r in doc.reviews.values()})
    notes.append(f"docflow reviews of {doc.doc_id} by {', '.join(reviewers)}")
    truth["notes"] = notes
    return truth


def export_truth(
    rt: Runtime, out_dir: Path, tenant: str | None = None, doc_type: str | None = None
) -> list[Exported]:
    """Write the reviewed documents (of `tenant`, of `doc_type`) and their truth under `out_dir`, with a
    manifest.csv listing them (rewritten whole). Documents whose reviews export no field are left out."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exported: list[Exported] = []
    taken: set[str] = set()
    for doc in reviewed_documents(rt.store, tenant, doc_type):
        truth = truth_of(doc)
        if not truth["fields"]:
            continue
        name = doc.filename or Path(doc.key).name
        folder = doc.tenant
        if f"{folder}/{name}" in taken:  # two documents of one name: the id names the second
            name = f"{doc.doc_id}{Path(name).suffix}"
        taken.add(f"{folder}/{name}")
        stem = Path(name).stem
        if any(Path(t).stem == stem and t != f"{folder}/{name}" for t in taken if t.startswith(f"{folder}/")):
            stem = name  # as the eval sets do when two files of a folder share a stem
        doc_path = Path("docs") / folder / name
        truth_path = Path("truth") / folder / f"{stem}.json"
        try:
            data = rt.bucket.get_bytes(doc.key)
        except DocflowError as exc:
            raise DocflowError(f"cannot export {doc.doc_id}: {exc}") from exc
        (out_dir / doc_path).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / doc_path).write_bytes(data)
        (out_dir / truth_path).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / truth_path).write_text(
            json.dumps(truth, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
        exported.append(
            Exported(
                doc.doc_id, doc.doc_type, doc_path.as_posix(), truth_path.as_posix(), len(truth["fields"])
            )
        )
    with (out_dir / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_COLUMNS)
        for e in exported:
            writer.writerow([e.path, e.doc_type, e.truth_path, "docflow reviews", ""])
    return exported
