"""Pure helpers: document ids, tenants, keys, the scan cursor."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docflow.bucket import (
    DOC_ID_HASH,
    SLUG_CHARS,
    ObjectInfo,
    doc_slug,
    filename_of,
    legacy_doc_id,
    make_doc_id,
    safe_tenant,
    tenant_of,
)
from docflow.ingest import SLACK, ScanCursor, _advance, iter_files, plan_upload

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("acme", "acme"), ("ACME Corp", "acme-corp"), ("../etc", "etc"), ("", "default"), ("a\x00b", "a-b")],
)
def test_safe_tenant(raw: str, expected: str) -> None:
    assert safe_tenant(raw) == expected


def test_doc_id_names_the_file_is_a_safe_partition_key_and_depends_on_tenant_and_bytes() -> None:
    doc_id = make_doc_id("Acme Corp", SHA, "Invoice 2024-03.pdf")
    assert doc_id == f"acme-corp-invoice-2024-03-{SHA[:16]}"
    assert "..." not in doc_id and all(c.islower() or c.isdigit() or c in "-_" for c in doc_id)
    assert make_doc_id("other", SHA, "Invoice 2024-03.pdf") != doc_id
    assert make_doc_id("acme corp", "cd" * 32, "Invoice 2024-03.pdf") != doc_id
    assert make_doc_id("acme", SHA, "%%%.pdf") == f"acme-{SHA[:16]}"  # no name to show: tenant and hash
    # never an old id (`<tenant>-<32 hex>`), which `docflow rekey` looks for
    assert make_doc_id("acme", SHA, "") != legacy_doc_id("acme", SHA) == f"acme-{SHA[:32]}"
    long = make_doc_id("t" * 60, SHA, "x" * 300 + ".pdf")
    assert len(long) <= 40 + 1 + SLUG_CHARS + 1 + DOC_ID_HASH


@pytest.mark.parametrize(
    ("filename", "slug"),
    [
        ("Invoice 2024-03.pdf", "invoice-2024-03"),
        ("Rechnung_Müller_Straße.PDF", "rechnung-muller-strasse"),
        ("café crème.txt", "cafe-creme"),
        ("report.final.v2.docx", "report-final-v2"),
        (".hidden", "hidden"),
        ("noext", "noext"),
        ("a...b..c.txt", "a-b-c"),
        ("scan\x00\n.png", "scan"),
        ("dir/sub/file name.pdf", "file-name"),
        ("C:\\Users\\me\\Q3 report.xlsx", "q3-report"),
        ("請求書.pdf", ""),
        ("---.pdf", ""),
        ("", ""),
        ("quarterly-results-for-the-board-of-directors-2024.pdf", "quarterly-results-for-the-board-of"),
        ("x" * 100 + ".pdf", "x" * 40),
    ],
)
def test_doc_slug(filename: str, slug: str) -> None:
    assert doc_slug(filename) == slug
    assert len(slug) <= SLUG_CHARS and not slug.startswith("-") and not slug.endswith("-")


@pytest.mark.parametrize(
    ("key", "tenant"),
    [
        ("incoming/acme/invoices/a.pdf", "acme"),
        ("incoming/a.pdf", "default"),
        ("incoming/Big Tenant/x.txt", "big-tenant"),
        ("elsewhere/acme/a.pdf", "elsewhere"),
    ],
)
def test_tenant_of(key: str, tenant: str) -> None:
    assert tenant_of(key, "incoming/") == tenant


def test_filename_of() -> None:
    assert filename_of("incoming/acme/sub/dir/report 1.pdf") == "report 1.pdf"


def _obj(key: str, etag: str, when: datetime) -> ObjectInfo:
    return ObjectInfo(key=key, etag=etag, size=1, last_modified=when)


def test_cursor_advances_to_newest_and_forgets_outside_the_slack_window() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    old = _obj("incoming/a", "e1", t0)
    new = _obj("incoming/b", "e2", t0 + SLACK + timedelta(minutes=1))
    cursor = _advance(ScanCursor(), [old, new])
    assert cursor.since == new.last_modified
    assert set(cursor.seen) == {"incoming/b"}  # "a" is older than since - SLACK: the watermark covers it
    assert ScanCursor.load(cursor.dump()) == cursor  # survives a round trip (the sensor's stored cursor)
    assert _advance(cursor, []) == cursor


def test_upload_plan_uses_tenant_prefix_and_relative_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "a.txt"
    f.write_text("hello")
    (tmp_path / ".hidden").write_text("x")
    files = list(iter_files([tmp_path]))
    assert files == [(f, tmp_path)]
    up = plan_upload(f, tmp_path, "incoming/", "Acme")
    assert up.key == "incoming/acme/sub/a.txt"
    assert up.doc_id.startswith("acme-") and up.size == 5
    with pytest.raises(FileNotFoundError):
        list(iter_files([tmp_path / "missing"]))
