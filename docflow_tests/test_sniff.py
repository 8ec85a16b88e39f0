"""Content sniffing and PDF page counting, on real dev documents and on bytes made here."""

import codecs
import io
import json
import random
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from docflow import sniff
from docflow.errors import BadDocument
from docflow.sniff import TEXT_TYPES, count_pages, decode_text, read_text, sniff_content_type

DEV_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev" / "docs"
needs_dev = pytest.mark.skipif(not DEV_DOCS.is_dir(), reason="dev eval documents not present")


@needs_dev
@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("invoice2data/AmazonWebServices.pdf", sniff.PDF),
        ("docling/multi_page.pdf", sniff.PDF),
        ("docling/word_sample.docx", sniff.DOCX),
        ("docling/powerpoint_sample.pptx", sniff.PPTX),
        ("docling/table_06.html", sniff.HTML),
        ("unstructured/example-10k-1p.html", sniff.HTML),  # XHTML behind an <?xml ...?> declaration
        ("unstructured/fake-email.eml", sniff.EMAIL),
        ("unstructured/fake-email.msg", sniff.MSG),
        ("invoice2data/Orlen.txt", sniff.PLAIN),  # "Faktura nr: ..." must not pass for e-mail headers
    ],
)
@pytest.mark.parametrize("name_kind", ["real", "misleading", "none"])
def test_sniffs_real_documents_by_content(relative: str, expected: str, name_kind: str) -> None:
    path = DEV_DOCS / relative
    filename = {"real": path.name, "misleading": "upload.bin", "none": ""}[name_kind]
    assert sniff_content_type(path.read_bytes(), filename) == expected


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


GARBAGE = random.Random(7).randbytes(4096)


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "scan.pdf", "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "", "image/jpeg"),
        (b"II*\x00" + b"\x00" * 32, "", "image/tiff"),
        (b"GIF89a" + b"\x00" * 32, "", "image/gif"),
        (GARBAGE, "notes.txt", sniff.BINARY),
        (b"", "empty.txt", sniff.BINARY),
        (b"\x01\x02\x03\x04\x05\x06\x07\x08" * 64, "", sniff.BINARY),  # control bytes, no NUL
        (json.dumps({"invoice": 1, "items": [1, 2]}).encode(), "data.txt", sniff.JSON),
        (b"  [1, 2, 3]\n", "", sniff.JSON),
        (b"{not json at all", "", sniff.PLAIN),
        (b'<?xml version="1.0"?>\n<invoice><total>3</total></invoice>', "", sniff.XML),
        (b"<invoice><total>3</total></invoice>", "", sniff.XML),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "", sniff.SVG),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "page.txt", sniff.HTML),
        (b"<table><tr><td>1</td></tr></table>", "", sniff.HTML),
        (b"Junk line\n<html><body>x</body></html>", "", sniff.HTML),
        (b"Use the <html> element for the root.", "", sniff.PLAIN),
        (b"a,b,c\n1,2,3\n", "table.csv", sniff.CSV),
        (b"a,b,c\n1,2,3\n", "", sniff.PLAIN),
        (b"# Title\n\nSome text.\n", "README.md", sniff.MARKDOWN),
        (b"# Title\n\nSome text.\n", "README", sniff.PLAIN),
        ("Caf\u00e9 cr\u00e8me, 10 \u20ac".encode("cp1252"), "", sniff.PLAIN),
        ("UTF-16 text \u00e9".encode("utf-16"), "", sniff.PLAIN),
        (b"\xef\xbb\xbfhello", "", sniff.PLAIN),
        (b"{\\rtf1\\ansi hello}", "", sniff.RTF),
        (b"From: a@example.com\nTo: b@example.com\nSubject: hi\n\nbody\n", "", sniff.EMAIL),
        (b"Name: Ann\nRole: admin\n\nnot an email\n", "", sniff.PLAIN),
        (_zip(["[Content_Types].xml", "xl/workbook.xml"]), "", sniff.XLSX),
        (_zip(["[Content_Types].xml", "word/document.xml"]), "", sniff.DOCX),
        (_zip(["notes/a.txt"]), "a.docx", sniff.ZIP),
        (b"PK\x03\x04truncated", "", sniff.ZIP),
        (b"\r\n%PDF-1.4\n%garbage", "", sniff.PDF),
    ],
)
def test_sniffs_made_bytes(data: bytes, filename: str, expected: str) -> None:
    assert sniff_content_type(data, filename) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"line one\r\nline two\rline three", "line one\nline two\nline three"),
        (b"\xef\xbb\xbfbom", "bom"),
        ("caf\u00e9 \u20ac".encode("cp1252"), "caf\u00e9 \u20ac"),
        ("z\u00f3\u0142w".encode(), "z\u00f3\u0142w"),
        (b"\x81\x8d\x8f", "\x81\x8d\x8f"),  # undefined in cp1252: latin-1
    ],
)
def test_decode_text(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


WORLD = "Invoice 2024-07: Grüße, café, 東京, Αθήνα, مرحبا, ½ €\n"


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (codecs.BOM_UTF16_LE + WORLD.encode("utf-16-le"), "notes.txt"),
        (codecs.BOM_UTF16_BE + WORLD.encode("utf-16-be"), "notes.txt"),
        (codecs.BOM_UTF8 + WORLD.encode(), "notes.txt"),
        (WORLD.encode(), "notes.txt"),
        ("Grüße aus Köln, ½ Preis\n".encode("latin-1"), "notes.txt"),
        ("Café crème, 10 € – “quoted”\n".encode("cp1252"), "notes.txt"),
        (b"name;amount\nAnn;10\n", "table.csv"),
        ("# Résumé\n\n- item one\n".encode("utf-16"), "README.md"),
        (b" " * 100_000 + b"\n7", "late.txt"),  # a letter or digit anywhere is text, not only in the head
        (b"\x1a" * 3 + b"ok", "dos.txt"),  # ^Z, the old end-of-file mark
    ],
)
def test_read_text_keeps_real_text_in_any_encoding(data: bytes, filename: str) -> None:
    assert sniff_content_type(data, filename) in TEXT_TYPES
    assert read_text(data) == decode_text(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"   \n\t\r\n  ", "no text: the document holds only whitespace"),
        ("\u3000\u00a0 \n".encode(), "only whitespace"),  # ideographic and no-break spaces
        (" \n\t ".encode("utf-16"), "only whitespace"),
        (b"---- ==== ****\n.,;\n", "no letter or digit"),
        (codecs.BOM_UTF16_LE + random.Random(1).randbytes(4000), "not readable as text in any encoding"),
        (codecs.BOM_UTF16_BE + random.Random(2).randbytes(600), "not readable as text in any encoding"),
        (codecs.BOM_UTF8 + random.Random(3).randbytes(4000), "not readable as text in any encoding"),
        ("\ue000\ue001 text".encode("utf-16"), "not readable"),  # private use, a font's symbols
    ],
)
def test_read_text_refuses_what_holds_no_readable_text(data: bytes, reason: str) -> None:
    with pytest.raises(BadDocument, match=reason):
        read_text(data)


def _pdf_bytes(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_count_pages_of_made_pdf() -> None:
    assert count_pages(_pdf_bytes(7), sniff.PDF) == 7


@needs_dev
def test_count_pages_agrees_with_pypdf() -> None:
    path = DEV_DOCS / "cuad_contracts" / "train_03_service_verizon.pdf"
    assert count_pages(path.read_bytes(), sniff.PDF) == len(PdfReader(path).pages) == 106


def test_count_pages_is_none_for_other_types() -> None:
    assert count_pages(b"hello", sniff.PLAIN) is None


def test_count_pages_rejects_a_truncated_pdf() -> None:
    data = _pdf_bytes(3)
    with pytest.raises(BadDocument, match="corrupt or truncated"):
        count_pages(data[: len(data) // 3], sniff.PDF)


def test_count_pages_rejects_an_encrypted_pdf() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf_bytes(2))))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(BadDocument, match="encrypted"):
        count_pages(buffer.getvalue(), sniff.PDF)


def test_count_pages_rejects_empty_bytes() -> None:
    with pytest.raises(BadDocument, match="empty"):
        count_pages(b"", sniff.PDF)
