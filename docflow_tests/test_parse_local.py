"""The local parser on real dev documents and on bad input made here."""

import codecs
import io
import random
import re
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from docflow import sniff
from docflow.backends import Parser, get_parser
from docflow.backends.parse.local import LocalParser, markdown_to_text, quick_text
from docflow.errors import BadDocument, DocumentTooLarge, UnsupportedFormat
from docflow.models import ParsedDocument, RawFile
from docflow.settings import Settings

DEV_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev" / "docs"
needs_dev = pytest.mark.skipif(not DEV_DOCS.is_dir(), reason="dev eval documents not present")


def raw_for(data: bytes, filename: str, content_type: str | None = None) -> RawFile:
    return RawFile(
        doc_id="test",
        sha256="0" * 64,
        size=len(data),
        content_type=content_type or sniff.sniff_content_type(data, filename),
        filename=filename,
    )


def parse(data: bytes, filename: str, content_type: str | None = None, **limits: int) -> ParsedDocument:
    return LocalParser(**limits).parse(data, raw_for(data, filename, content_type))


def parse_dev(relative: str) -> ParsedDocument:
    path = DEV_DOCS / relative
    return parse(path.read_bytes(), path.name)


def pdf_bytes(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def encrypted(data: bytes) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- wiring -------------------------------------------------------------------------------------------


def test_parser_is_built_from_settings_through_the_registry() -> None:
    settings = Settings(parse_backend="local", max_pages=7, max_bytes=12345)
    parser = get_parser(settings)
    assert isinstance(parser, LocalParser)
    assert isinstance(parser, Parser)
    assert (parser.name, parser.max_pages, parser.max_bytes) == ("local", 7, 12345)


# --- PDF ----------------------------------------------------------------------------------------------


@needs_dev
def test_invoice_pdf_has_vendor_number_and_total() -> None:
    doc = parse_dev("invoice2data/AmazonWebServices.pdf")
    assert doc.parser == "local/pypdfium2"
    assert doc.pages == 1
    assert doc.markdown.startswith("<!-- page 1 -->")
    assert "Amazon Web Services" in doc.text
    assert "42183017" in doc.text
    assert re.search(r"TOTAL AMOUNT DUE ON August 3 , 2014\s+\$4\.11", doc.text)
    assert doc.warnings == []


@needs_dev
def test_multi_page_pdf_records_pages_on_blocks() -> None:
    doc = parse_dev("docling/multi_page.pdf")
    assert doc.pages == 5
    pages = [block.page for block in doc.blocks]
    assert set(pages) == {1, 2, 3, 4, 5}
    assert pages == sorted(pages)  # reading order follows the pages
    for number in range(1, 6):
        assert f"<!-- page {number} -->" in doc.markdown
    assert doc.markdown.index("<!-- page 2 -->") < doc.markdown.index("<!-- page 3 -->")


@needs_dev
def test_pdf_text_is_plain_and_markdown_has_headings() -> None:
    doc = parse_dev("unstructured/layout-parser-paper-fast.pdf")
    headings = [block for block in doc.blocks if block.kind == "heading"]
    assert headings and "LayoutParser" in headings[0].text
    assert headings[0].text.startswith("#") and headings[0].level == 1
    assert "<!--" not in doc.text
    assert not re.search(r"(?m)^#", doc.text)
    # PDFium marks a hyphen at a line end; the word is joined back
    assert "reuse of important innovations" in doc.text
    # wrapped lines of one paragraph are one line of text
    assert "the application of neural networks. Ideally, research outcomes" in doc.text


@needs_dev
def test_contract_paragraphs_are_split_on_vertical_space() -> None:
    doc = parse_dev("cuad_contracts/test_04_service_atmosenergy.pdf")
    paragraphs = [block.text for block in doc.blocks if block.kind == "paragraph"]
    assert "WITNESSETH:" in paragraphs
    assert any(
        text.startswith("NOW, THEREFORE") and text.endswith("agree as follows:") for text in paragraphs
    )


@needs_dev
def test_pdf_without_unicode_map_warns_garbled() -> None:
    doc = parse_dev("parsee_invoices/Invoice___TeamGantt-May.pdf")
    assert any("page 1" in warning and "garbled" in warning for warning in doc.warnings)
    assert doc.parser == "local/pypdfium2+rapidocr" and "Gantt" in doc.text


def test_pdf_pages_without_text_layer_warn() -> None:
    doc = parse(pdf_bytes(2), "scan.pdf")
    assert doc.pages == 2
    assert doc.warnings == [f"page {n} has no text layer: OCRed" for n in (1, 2)]
    blank = pdf_bytes(1)
    assert LocalParser(ocr=False).parse(blank, raw_for(blank, "scan.pdf")).warnings == [
        "page 1 has no text layer (OCR is off)"
    ]


# --- HTML, text, markdown, CSV -----------------------------------------------------------------------


@needs_dev
def test_html_table_becomes_pipe_table() -> None:
    doc = parse_dev("docling/table_06.html")
    assert doc.parser == "local/html"
    assert "| A | B |\n| --- | --- |" in doc.markdown
    assert "<table" not in doc.markdown and "<style" not in doc.markdown
    tables = [block for block in doc.blocks if block.kind == "table"]
    assert len(tables) == 1 and "A1" in tables[0].text  # the nested tables flattened into a cell
    assert [block.text for block in doc.blocks if block.kind == "heading"] == ["# Header"]
    assert "|" not in doc.text and "After table" in doc.text


@needs_dev
def test_xhtml_filing_drops_xml_declaration() -> None:
    doc = parse_dev("unstructured/example-10k-1p.html")
    assert "xml version" not in doc.markdown
    assert "Galaxy Gaming, Inc." in doc.text
    assert any(block.kind == "table" and "GLXZ" in block.text for block in doc.blocks)


def test_html_drops_scripts_styles_and_nav() -> None:
    html = (
        b"<html><head><title>T</title><style>p{}</style></head><body><nav>Menu</nav>"
        b"<script>alert(1)</script><h2>Terms</h2><p>Pay <b>now</b>.</p></body></html>"
    )
    doc = parse(html, "page.html")
    assert "Menu" not in doc.markdown and "alert" not in doc.markdown and "p{}" not in doc.markdown
    assert "## Terms" in doc.markdown and "**now**" in doc.markdown
    assert "Pay now." in doc.text


@needs_dev
def test_plain_text_invoice() -> None:
    doc = parse_dev("invoice2data/Orlen.txt")
    assert doc.parser == "local/text"
    assert "Polski Koncern Naftowy ORLEN" in doc.text
    assert "Należność ogółem: 316,83 PLN" in doc.text
    assert len(doc.blocks) > 3 and all(block.kind == "paragraph" for block in doc.blocks)


def test_plain_text_decoding_and_paragraphs() -> None:
    data = "Caf\u00e9 \u2013 10 \u20ac\r\nsecond line\r\n\r\n\r\nnext paragraph\r\n".encode("cp1252")
    doc = parse(data, "note.txt")
    assert "\r" not in doc.text and "\r" not in doc.markdown
    assert [block.text for block in doc.blocks] == [
        "Caf\u00e9 \u2013 10 \u20ac\nsecond line",
        "next paragraph",
    ]


def test_markdown_passthrough_with_heading_blocks() -> None:
    data = b"\xef\xbb\xbf# Title\n\nSome *bold* [link](http://x) text.\n\n## Part\n\n- one\n- two\n"
    doc = parse(data, "notes.md")
    assert doc.markdown.startswith("# Title")
    assert [(block.kind, block.level) for block in doc.blocks] == [
        ("heading", 1),
        ("paragraph", None),
        ("heading", 2),
        ("list", None),
    ]
    assert doc.text == "Title\n\nSome bold link text.\n\nPart\n\none\ntwo"


def test_csv_becomes_pipe_table() -> None:
    doc = parse(b"name;amount\nAlpha;1|2\n\nBeta;3\n", "data.csv")
    assert doc.markdown == "| name | amount |\n| --- | --- |\n| Alpha | 1\\|2 |\n| Beta | 3 |\n"
    assert doc.blocks[0].kind == "table"
    assert doc.text == "name\tamount\nAlpha\t1|2\nBeta\t3"


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("**bold** and _it_ and `code`", "bold and it and code"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "a\tb\n1\t2"),
        ("<!-- page 3 -->\n\n### Heading ###", "Heading"),
        ("![logo](x.png) Acme", "logo Acme"),
    ],
)
def test_markdown_to_text(markdown: str, text: str) -> None:
    assert markdown_to_text(markdown) == text


# --- bad input ----------------------------------------------------------------------------------------


def test_empty_bytes() -> None:
    with pytest.raises(BadDocument, match="empty document"):
        parse(b"", "nothing.pdf", sniff.PDF)


def test_truncated_pdf() -> None:
    data = pdf_bytes(3)
    with pytest.raises(BadDocument, match="corrupt or truncated"):
        parse(data[: len(data) // 3], "cut.pdf", sniff.PDF)


def test_encrypted_pdf() -> None:
    with pytest.raises(BadDocument, match="encrypted and needs a password"):
        parse(encrypted(pdf_bytes(1)), "locked.pdf")


def test_pdf_over_max_pages() -> None:
    with pytest.raises(DocumentTooLarge, match="12 pages, over the limit of 10 pages"):
        parse(pdf_bytes(12), "long.pdf", max_pages=10)


def test_over_max_bytes_is_checked_before_any_work() -> None:
    # not a PDF at all: the byte limit must trip before PDFium would call it corrupt
    with pytest.raises(DocumentTooLarge, match="over the limit of 100 bytes"):
        parse(b"x" * 101, "big.pdf", sniff.PDF, max_bytes=100)


@needs_dev
def test_unsupported_format_names_the_type() -> None:
    with pytest.raises(UnsupportedFormat, match=re.escape(sniff.PPT)):
        parse(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.ppt", sniff.PPT)


def test_unsupported_binary() -> None:
    with pytest.raises(UnsupportedFormat, match="application/octet-stream"):
        parse(b"\x00\x01\x02", "blob.bin")


# --- quick_text ---------------------------------------------------------------------------------------


@needs_dev
def test_quick_text_reads_first_pages_only() -> None:
    data = (DEV_DOCS / "docling" / "multi_page.pdf").read_bytes()
    one, five = quick_text(data, sniff.PDF, max_pages=1), quick_text(data, sniff.PDF, max_pages=5)
    assert 0 < len(one) < len(five)
    assert five.startswith(one)
    assert len(quick_text(data, sniff.PDF, max_pages=5, max_chars=100)) == 100


@needs_dev
def test_quick_text_of_invoice_and_html() -> None:
    invoice = (DEV_DOCS / "invoice2data" / "AmazonWebServices.pdf").read_bytes()
    assert "Amazon Web Services" in quick_text(invoice, sniff.PDF)
    html = (DEV_DOCS / "docling" / "table_06.html").read_bytes()
    text = quick_text(html, sniff.HTML)
    assert "first paragraph" in text and "border-collapse" not in text


@pytest.mark.parametrize(
    ("data", "content_type", "error", "message"),
    [
        (b"", sniff.PDF, BadDocument, "empty"),
        (encrypted(pdf_bytes(1)), sniff.PDF, BadDocument, "encrypted"),
        (b"%PDF-1.4 broken", sniff.PDF, BadDocument, "corrupt"),
        (b"PK\x03\x04", sniff.DOCX, BadDocument, "corrupt"),
        (b"PK\x03\x04", sniff.ZIP, UnsupportedFormat, "cannot read"),
    ],
)
def test_quick_text_errors(data: bytes, content_type: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        quick_text(data, content_type)


@pytest.mark.parametrize(
    ("data", "filename", "words"),
    [
        ("Total 10 €, Grüße aus 東京\n".encode("utf-16"), "note.txt", ["Grüße", "東京"]),
        ("Café crème 10 €\n".encode("cp1252"), "note.txt", ["Café crème"]),
        (codecs.BOM_UTF8 + "naïve résumé\n".encode(), "note.txt", ["naïve résumé"]),
        (b"name,amount\nAnn,10\n", "sheet.csv", ["Ann", "10"]),
        (b"# Notes\n\nSome *text*.\n", "notes.md", ["Notes", "Some"]),
        ('{"vendor": "Müller", "total": 10}'.encode("utf-16"), "data.json", ["Müller", "10"]),
    ],
)
def test_text_in_other_encodings_parses(data: bytes, filename: str, words: list[str]) -> None:
    text = parse(data, filename).text
    assert all(word in text for word in words), text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"  \n\n\t  \r\n", "no text"),
        (" \n".encode("utf-16"), "no text"),
        (codecs.BOM_UTF16_LE + random.Random(5).randbytes(3000), "not readable as text in any encoding"),
    ],
)
def test_text_with_nothing_readable_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(BadDocument, match=message):
        parse(data, "blank.txt")


# --- eval: tables and OCR on rendered pages ------------------------------------------------------------


@needs_dev
def test_dev_pdf_tables_are_found_with_their_cells() -> None:
    from docflow.evaluation.parse import table_cells

    truth_dir = DEV_DOCS.parent / "truth"
    for relative, least in (("docling/2305.03393v1-pg9.pdf", 0.8), ("tabula/campaign_donors.pdf", 0.95)):
        doc = parse_dev(relative)
        truth = (truth_dir / relative.replace(".pdf", ".tables.md")).read_text(encoding="utf-8")
        found, total = table_cells(truth, doc.markdown)
        assert found >= least * total, (relative, found, total)


def test_rendered_ocr_scores_a_receipt_page_against_its_text_layer(tmp_path: Path) -> None:
    pytest.importorskip("reportlab")
    from reportlab.pdfgen import canvas

    from docflow.evaluation import Item
    from docflow.evaluation.parse import rendered_ocr

    path = tmp_path / "receipt.pdf"
    c = canvas.Canvas(str(path), pagesize=(300, 300))
    c.setFont("Helvetica-Bold", 16)
    c.drawString(30, 260, "CORNER BAKERY")
    c.setFont("Helvetica", 12)
    for i, (name, price) in enumerate(
        (("Sourdough loaf", "4.50"), ("Oat cookies", "3.25"), ("Total", "7.75"))
    ):
        c.drawString(30, 220 - 20 * i, name)
        c.drawString(200, 220 - 20 * i, price)
    c.showPage()
    c.save()
    items = [
        Item(path=path, doc_type="receipt", truth={}, truth_dir=None, doc_id="r"),
        Item(path=path, doc_type="contract", truth={}, truth_dir=None, doc_id="c"),  # not a receipt: skipped
    ]
    rows = rendered_ocr(items)
    assert [row["kind"] for row in rows] == ["ocr_rendered_receipt"]
    assert rows[0]["text_similarity"] >= 0.8
