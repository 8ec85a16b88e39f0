"""`docflow eval` end to end on a small manifest: selection, worker processes, per-folder and per-type
summaries, kept parses, and a broken document reported rather than crashing the run."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from docflow.evaluation import load_manifest, run_eval, select
from docflow.runtime import REPO_ROOT

SAMPLES = REPO_ROOT / "data" / "samples"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalset")
    rows = []
    for folder, name, doc_type, fields in [
        ("shop", "receipt-corner-cafe.txt", "receipt", {"store_name": "CORNER CAFE", "total": 8.15}),
        ("office", "invoice-northwind-2024-0042.pdf", "invoice", {"invoice_number": "2024-0042"}),
        ("office", "letter-tenancy.html", "letter", {}),
    ]:
        (root / "docs" / folder).mkdir(parents=True, exist_ok=True)
        (root / "truth" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / name, root / "docs" / folder / name)
        truth = root / "truth" / folder / f"{Path(name).stem}.json"
        truth.write_text(json.dumps({"doc_type": doc_type, "fields": fields}))
        rows.append([f"docs/{folder}/{name}", doc_type, str(truth.relative_to(root)), "", ""])
    broken = root / "docs" / "office" / "truncated.pdf"
    broken.write_bytes((SAMPLES / "invoice-northwind-2024-0042.pdf").read_bytes()[:300])
    rows.append(["docs/office/truncated.pdf", "invoice", "", "", ""])
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "doc_type", "truth_path", "source_repo", "license"])
        writer.writerows(rows)
    return root / "manifest.csv"


def test_selection_by_folder_and_type(manifest: Path) -> None:
    items = load_manifest(manifest)
    assert [i.folder for i in items] == ["shop", "office", "office", "office"]
    assert [i.path.name for i in select(items, folders=["shop"])] == ["receipt-corner-cafe.txt"]
    assert len(select(items, folders=["office"], doc_types=["invoice"])) == 2
    assert select(items, doc_types=["contract"]) == []


def test_eval_reports_per_folder_and_type_and_records_a_broken_document(docflow_env, rt, manifest) -> None:
    from docflow.settings import get_settings

    report = run_eval(manifest, get_settings(), workers=1)
    assert report["n_documents"] == 4 and report["processed"] == 4
    assert report["failed"] == 1 and report["failures"][0]["path"].endswith("truncated.pdf")
    assert set(report["by_folder"]) == {"shop", "office"}
    assert set(report["by_type"]) == {"receipt", "invoice", "letter"}
    assert report["by_folder"]["shop"]["n"] == 1
    assert report["by_type"]["receipt"]["fields"] == 1.0  # the sample receipt's store and total
    assert report["classification"]["n"] == 4
    again = run_eval(manifest, get_settings(), workers=1)  # done with this configuration: nothing to do
    assert again["processed"] == 1  # only the failed document is tried again


def test_reuse_parse_keeps_the_stored_parse(docflow_env, rt, manifest) -> None:
    from docflow.settings import get_settings

    run_eval(manifest, get_settings(), workers=1, folders=["shop"])
    item = select(load_manifest(manifest), folders=["shop"])[0]
    parsed = rt.store.load_parsed(item.doc_id)
    marked = parsed.model_copy(update={"text": parsed.text + "\nKEPT-PARSE-MARK"})
    rt.store.save_parsed(item.doc_id, marked)
    report = run_eval(manifest, get_settings(), workers=1, folders=["shop"], force=True, reuse_parse=True)
    assert report["processed"] == 1
    assert "KEPT-PARSE-MARK" in rt.store.load_parsed(item.doc_id).text  # not parsed again
    assert rt.store.get_document(item.doc_id).status == "done"
    run_eval(manifest, get_settings(), workers=1, folders=["shop"], force=True)
    assert "KEPT-PARSE-MARK" not in rt.store.load_parsed(item.doc_id).text  # a full run parses again
