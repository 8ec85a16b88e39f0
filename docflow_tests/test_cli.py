"""`docflow run`, `status` and `search` end to end, in-process through click, on real services."""

import json
import shutil

import pytest
from click.testing import CliRunner

from docflow.cli import cli
from docflow.runtime import REPO_ROOT


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def invoice2data_run(docflow_env, eval_dev):
    folder = eval_dev / "docs" / "invoice2data"
    result = _invoke("run", str(folder), "--tenant", "cli", "--json")
    return folder, result


def test_run_processes_every_file_of_a_folder(invoice2data_run, rt) -> None:
    folder, result = invoice2data_run
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary) == len(list(folder.iterdir()))
    for doc in summary:
        assert doc["status"] == "done", doc
        assert doc["doc_type"] and doc["chunks"] > 0
        assert rt.store.load_parsed(doc["doc_id"]).markdown.strip()
        assert rt.store.load_extraction(doc["doc_id"]).fields


def test_a_second_run_skips_what_is_already_processed(invoice2data_run) -> None:
    folder, _ = invoice2data_run
    result = _invoke("run", str(folder / "oyo.pdf"), "--tenant", "cli")
    assert result.exit_code == 0
    assert "already processed" in result.stderr


def test_search_for_each_vendor_name_returns_that_vendors_invoice_first(invoice2data_run, eval_dev) -> None:
    folder, _ = invoice2data_run
    misses = []
    for doc in sorted(folder.iterdir()):
        truth = json.loads((eval_dev / "truth" / "invoice2data" / f"{doc.stem}.json").read_text())
        vendor = truth["fields"]["vendor_name"]
        result = _invoke("search", vendor, "--k", "5", "--json", "--tenant", "cli")
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)
        assert hits, vendor
        assert set(hits[0]) == {"doc_id", "key", "filename", "doc_type", "chunk_index", "score", "text"}
        if hits[0]["filename"] != doc.name:
            misses.append((vendor, doc.name, [h["filename"] for h in hits]))
    assert misses == []


def test_status_lists_documents_as_json(invoice2data_run) -> None:
    result = _invoke("status", "--json", "--tenant", "cli")
    docs = json.loads(result.stdout)
    assert docs and {"doc_id", "key", "filename", "status", "doc_type", "error"} <= set(docs[0])
    one = json.loads(_invoke("status", docs[0]["doc_id"], "--json").stdout)
    assert [d["doc_id"] for d in one] == [docs[0]["doc_id"]]


def test_run_exits_non_zero_when_a_document_fails(docflow_env, tmp_path) -> None:
    shutil.copy(REPO_ROOT / "data" / "samples" / "receipt-corner-cafe.txt", tmp_path / "ok.txt")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    result = _invoke("run", str(tmp_path), "--tenant", "clifail")
    assert result.exit_code == 1
    assert "1 done, 1 failed" in result.output
    assert "error: raw_file" in result.output

    failed = json.loads(_invoke("status", "--failed", "--json", "--tenant", "clifail").stdout)
    assert [d["filename"] for d in failed] == ["broken.pdf"]


def test_ask_without_an_llm_is_extractive_and_cites_sources(invoice2data_run) -> None:
    answer = json.loads(_invoke("ask", "What is the total of the OYO invoice?", "--json").stdout)
    assert answer["extractive"] is True
    assert answer["sources"] and answer["sources"][0]["doc_id"]


def test_retry_failed_recovers_what_can_recover_and_reports_the_rest(docflow_env, rt, tmp_path) -> None:
    shutil.copy(REPO_ROOT / "data" / "samples" / "letter-tenancy.html", tmp_path / "letter.html")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nstill not a pdf")
    assert _invoke("run", str(tmp_path), "--tenant", "retry").exit_code == 1
    letter = next(d for d in rt.store.list_documents(tenant="retry") if d.filename == "letter.html")
    rt.store.set_status(letter.doc_id, "failed", error="embeddings: BackendUnavailable: outage (simulated)")

    result = _invoke("retry", "--failed", "--tenant", "retry", "--json")
    assert result.exit_code == 1  # the broken PDF is still broken
    summary = {d["filename"]: d for d in json.loads(result.stdout)}
    assert summary["letter.html"]["status"] == "done" and summary["letter.html"]["error"] is None
    assert summary["broken.pdf"]["status"] == "failed"
    assert "1 recovered, 1 still failing" in result.stderr


def test_a_document_stranded_without_a_run_is_a_dead_letter_and_retried(docflow_env, rt, tmp_path) -> None:
    shutil.copy(REPO_ROOT / "data" / "samples" / "resume-jane-doe.md", tmp_path / "resume.md")
    assert _invoke("run", str(tmp_path), "--tenant", "stranded").exit_code == 0
    doc = rt.store.list_documents(tenant="stranded")[0]
    rt.store.set_status(doc.doc_id, "running", stage="parsed_markdown")  # its run died unrecorded...
    listed = lambda: json.loads(_invoke("status", "--failed", "--tenant", "stranded", "--json").stdout)  # noqa: E731
    assert listed() == []  # ... but only just: it may still be working
    with rt.store.tx() as conn:  # ... an hour ago, and no run is queued or running for it
        conn.execute(
            "UPDATE docflow.documents SET updated_at = now() - interval '1 hour' WHERE doc_id = %s",
            (doc.doc_id,),
        )
    assert [d["doc_id"] for d in listed()] == [doc.doc_id]
    result = _invoke("retry", "--failed", "--tenant", "stranded", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["status"] == "done"
