"""Every local format on a real file made here (or a dev document), and bad input failing fast."""

import email.message
import io
import json
import zipfile

import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfWriter

from docflow import sniff
from docflow.backends.parse.local import LocalParser, quick_text
from docflow.errors import BadDocument, DocumentTooLarge, UnsupportedFormat
from docflow.models import ParsedDocument, RawFile

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def parse(data: bytes, filename: str, **options) -> ParsedDocument:
    content_type = sniff.sniff_content_type(data, filename)
    raw = RawFile(doc_id="t", sha256="0" * 64, size=len(data), content_type=content_type, filename=filename)
    return LocalParser(**options).parse(data, raw)


def _font(size: int):
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default(size=size)


def receipt_image(fmt: str) -> bytes:
    image = Image.new("RGB", (900, 420), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), "CORNER BAKERY", fill="black", font=_font(44))
    draw.text((40, 130), "Sourdough loaf", fill="black", font=_font(30))
    draw.text((620, 130), "4.50", fill="black", font=_font(30))
    draw.text((40, 190), "Total due", fill="black", font=_font(30))
    draw.text((620, 190), "12.75", fill="black", font=_font(30))
    draw.text((40, 300), "Thank you for shopping with us", fill="black", font=_font(30))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Quarterly Report", level=1)
    document.add_paragraph("Revenue grew in every region.")
    document.add_paragraph("First point", style="List Bullet")
    document.add_paragraph("Second point", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["Region", "Q1", "Q2"], ["North", "10", "12"], ["South", "7", "9"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = document.add_table(rows=2, cols=3)
    merged.cell(0, 0).merge(merged.cell(0, 1)).text = "Wide"
    merged.cell(0, 2).text = "Solo"
    merged.cell(1, 0).text = "a"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Roadmap"
    slide.placeholders[1].text = "Ship the parser"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Numbers"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), value in zip([(0, 0), (0, 1), (1, 0), (1, 1)], ["Item", "Cost", "Disk", "40"], strict=True):
        table.cell(r, c).text = value
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(["Quarter", "Units", "Revenue"])
    sheet.append(["Q1", 10, 1500.5])
    sheet.append(["Q2", 12, 1800])
    sheet["A5"] = "Merged note"
    sheet.merge_cells("A5:C5")
    book.create_sheet("Empty")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def odt_bytes() -> bytes:
    content = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2">
<office:body><office:text>
<text:h text:outline-level="1">Meeting notes</text:h>
<text:p>We agreed on<text:s/>the plan.</text:p>
<text:list><text:list-item><text:p>Hire two people</text:p></text:list-item>
<text:list-item><text:p>Open an office</text:p></text:list-item></text:list>
<table:table><table:table-row><table:table-cell table:number-columns-spanned="2"><text:p>Budget</text:p>
</table:table-cell><table:covered-table-cell/></table:table-row>
<table:table-row><table:table-cell><text:p>Staff</text:p></table:table-cell>
<table:table-cell><text:p>200</text:p></table:table-cell></table:table-row></table:table>
</office:text></office:body></office:document-content>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        archive.writestr("content.xml", content)
    return buffer.getvalue()


def epub_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        archive.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
            'container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-'
            'package+xml"/></rootfiles></container>',
        )
        archive.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Field Guide</dc:title>'
            "</metadata>"
            '<manifest><item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/>'
            '<item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/></manifest>'
            '<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>',
        )
        archive.writestr("OEBPS/one.xhtml", "<html><body><h2>Birds</h2><p>Robins sing.</p></body></html>")
        archive.writestr("OEBPS/two.xhtml", "<html><body><h2>Trees</h2><p>Oaks grow.</p></body></html>")
    return buffer.getvalue()


def eml_bytes() -> bytes:
    message = email.message.EmailMessage()
    message["From"] = "Ann <ann@example.com>"
    message["To"] = "bob@example.com"
    message["Subject"] = "Invoice attached"
    message["Date"] = "Mon, 01 Jul 2024 10:00:00 +0000"
    message.set_content("Hi Bob,\n\nplease find the invoice attached.\n")
    message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="inv-42.pdf")
    return message.as_bytes()


def test_docx_headings_lists_tables_and_merged_cells() -> None:
    doc = parse(docx_bytes(), "report.bin")  # detected by content, not by name
    assert doc.parser == "local/docx"
    assert "# Quarterly Report" in doc.markdown
    assert "- First point\n- Second point" in doc.markdown
    assert "| Region | Q1 | Q2 |\n| --- | --- | --- |\n| North | 10 | 12 |" in doc.markdown
    assert "| Wide | Wide | Solo |" in doc.markdown  # a merged cell repeats over the columns it covers


def test_pptx_slides_are_pages_with_titles_and_tables() -> None:
    doc = parse(pptx_bytes(), "deck")
    assert doc.pages == 2 and doc.parser == "local/pptx"
    assert "## Roadmap" in doc.markdown and "- Ship the parser" in doc.markdown
    assert "| Item | Cost |\n| --- | --- |\n| Disk | 40 |" in doc.markdown
    assert {b.page for b in doc.blocks if "Disk" in b.text} == {2}


def test_xlsx_sheets_become_tables_with_merged_cells() -> None:
    doc = parse(xlsx_bytes(), "sales")
    assert doc.parser == "local/xlsx" and doc.pages == 2
    assert "## Sales" in doc.markdown and "## Empty" in doc.markdown
    assert "| Q1 | 10 | 1500.5 |" in doc.markdown and "| Q2 | 12 | 1800 |" in doc.markdown
    assert "| Merged note |  |  |" in doc.markdown


def test_odt_epub_eml_json_xml_rtf_csv() -> None:
    odt = parse(odt_bytes(), "notes")
    assert "# Meeting notes" in odt.markdown and "We agreed on the plan." in odt.markdown
    assert "- Hire two people\n- Open an office" in odt.markdown and "| Budget | Budget |" in odt.markdown
    book = parse(epub_bytes(), "book")
    assert book.parser == "local/epub" and book.markdown.index("Birds") < book.markdown.index("Trees")
    mail = parse(eml_bytes(), "mail")
    assert mail.parser == "local/eml" and "# Invoice attached" in mail.markdown
    assert "please find the invoice attached" in mail.text
    assert "## Attachments" in mail.markdown and "inv-42.pdf (application/pdf, 13 bytes)" in mail.markdown
    records = parse(json.dumps([{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 5}]).encode(), "x")
    assert "| sku | qty |" in records.markdown and "| B2 | 5 |" in records.markdown
    xml = parse(b'<?xml version="1.0"?><invoice id="7"><total>3.50</total></invoice>', "x")
    assert "- **invoice** (id=7)" in xml.markdown and "**total**: 3.50" in xml.markdown
    rtf = parse(rb"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard Hello {\b bold} world.\par}", "x")
    assert rtf.parser == "local/rtf" and "Hello bold world." in rtf.text
    csv = parse(b"a,b\n1,2\n", "t.csv")
    assert "| a | b |" in csv.markdown


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_images_are_ocred(fmt: str) -> None:
    doc = parse(receipt_image(fmt), f"scan.{fmt.lower()}")
    assert doc.parser == "local/rapidocr"
    text = doc.text.lower()
    assert "corner bakery" in text and "thank you for shopping with us" in text
    assert "12.75" in text and "sourdough" in text


def test_scanned_pdf_pages_are_ocred_page_by_page() -> None:
    image = Image.open(io.BytesIO(receipt_image("PNG")))
    buffer = io.BytesIO()
    image.save(buffer, format="PDF", resolution=100)
    doc = parse(buffer.getvalue(), "scan.pdf")
    assert doc.parser == "local/pypdfium2+rapidocr"
    assert "corner bakery" in doc.text.lower() and doc.warnings == ["page 1 has no text layer: OCRed"]


def test_msg_lists_attachments() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared/eval/dev/docs/unstructured/fake-email.msg"
    if not path.exists():
        pytest.skip("dev documents not present")
    doc = parse(path.read_bytes(), path.name)
    assert doc.parser == "local/msg" and doc.text.strip()


# --- bad input ------------------------------------------------------------------------------------------


def _bomb(kind: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        part = "word/document.xml" if kind == "docx" else "xl/worksheets/sheet1.xml"
        archive.writestr(part, b"\x00" * (600 * 1024 * 1024))
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["docx", "xlsx"])
def test_zip_bombs_fail_fast(kind: str) -> None:
    data = _bomb(kind)
    with pytest.raises(DocumentTooLarge, match="zip bomb"):
        parse(data, f"bomb.{kind}")


def test_bad_input_fails_with_clear_errors() -> None:
    with pytest.raises(BadDocument, match="empty"):
        parse(b"", "empty.docx")
    with pytest.raises(UnsupportedFormat, match="octet-stream"):
        parse(bytes(range(256)) * 8, "renamed.pdf")
    with pytest.raises(BadDocument, match="corrupt"):
        parse(
            docx_bytes()[:2000],
            "cut.docx",
        )
    with pytest.raises(BadDocument, match=r"corrupt|truncated"):
        parse(receipt_image("PNG")[:300], "cut.png")


def test_ten_thousand_pages_fail_fast() -> None:
    writer = PdfWriter()
    for _ in range(10_000):
        writer.add_blank_page(width=10, height=10)
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(DocumentTooLarge, match="10,000 pages"):
        parse(buffer.getvalue(), "huge.pdf")


def test_timeout_is_a_clear_error() -> None:
    with pytest.raises(DocumentTooLarge, match="longer than the limit"):
        parse(docx_bytes(), "slow.docx", timeout_s=1e-9)


def test_quick_text_covers_new_formats_without_ocr() -> None:
    assert "Quarterly Report" in quick_text(docx_bytes(), sniff.DOCX)
    assert "Revenue" in quick_text(xlsx_bytes(), sniff.XLSX)
    assert quick_text(receipt_image("PNG"), "image/png") == ""


# --- tables on born-digital PDF pages ---------------------------------------------------------------------

RULED = [["Region", "Q1", "Q2"], ["North", "10.5", "12.0"], ["South", "7.25", "9.75"]]
BORDERLESS = [
    ["Item", "Qty", "Price", "Total"],
    ["Apples", "3", "0.50", "1.50"],
    ["Bread loaf", "1", "2.25", "2.25"],
    ["Milk", "2", "1.10", "2.20"],
    ["Coffee beans", "1", "8.00", "8.00"],
]


def _canvas():
    pytest.importorskip("reportlab")
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    return buffer, canvas.Canvas(buffer, pagesize=A4)


def tables_pdf() -> bytes:
    """A heading, a ruled table with a header cell spanning two columns, prose, a borderless table, prose."""
    buffer, c = _canvas()
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, 790, "Quarterly figures")
    c.setFont("Helvetica", 10)
    c.drawString(72, 770, "The ruled table below lists revenue by region.")
    xs, ys = [72, 192, 282, 372], [750, 730, 710, 690, 670]
    for y in ys:
        c.line(xs[0], y, xs[-1], y)
    for x in (xs[0], xs[-1]):
        c.line(x, ys[0], x, ys[-1])
    for x in xs[1:-1]:
        c.line(x, ys[1], x, ys[-1])  # no rule between the last two cells of the top row: one spanning cell
    c.drawString(xs[0] + 4, ys[0] - 14, "Revenue 2024")
    for i, row in enumerate(RULED, start=1):
        for j, value in enumerate(row):
            c.drawString(xs[j] + 4, ys[i] - 14, value)
    c.drawString(72, 640, "A borderless table follows.")
    for i, row in enumerate(BORDERLESS):
        for j, value in enumerate(row):
            c.drawString([72, 200, 300, 400][j], 610 - 16 * i, value)
    c.drawString(72, 510, "Closing paragraph after the tables.")
    c.showPage()
    c.save()
    return buffer.getvalue()


def _pipe_rows(block_text: str) -> list[list[str]]:
    rows = []
    for line in block_text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not all(set(cell) <= {"-", ":"} and cell for cell in cells):
            rows.append(cells)
    return rows


def test_pdf_ruled_and_borderless_tables_become_pipe_tables_in_reading_order() -> None:
    doc = parse(tables_pdf(), "tables.pdf")
    tables = [block for block in doc.blocks if block.kind == "table"]
    assert len(tables) == 2
    assert _pipe_rows(tables[0].text) == [["Revenue 2024", "", ""], *RULED]
    assert _pipe_rows(tables[1].text) == BORDERLESS
    assert all(block.page == 1 for block in tables)
    order = [
        doc.markdown.index(text)
        for text in (
            "Quarterly figures",
            "| Revenue 2024",
            "A borderless table follows.",
            "| Item",
            "Closing",
        )
    ]
    assert order == sorted(order)
    assert doc.markdown.count("Bread loaf") == 1  # table text is not repeated as prose


def test_pdf_two_text_columns_are_not_a_table() -> None:
    buffer, c = _canvas()
    c.setFont("Helvetica", 10)
    left = "The committee met on Monday and agreed to review the budget again next week"
    right = "Members asked for a clearer summary of the costs before the vote in spring"
    for i in range(12):
        c.drawString(72, 760 - 14 * i, " ".join(left.split()[i % 5 : i % 5 + 7]))
        c.drawString(320, 760 - 14 * i, " ".join(right.split()[i % 5 : i % 5 + 7]))
    c.showPage()
    c.save()
    doc = parse(buffer.getvalue(), "columns.pdf")
    assert not [block for block in doc.blocks if block.kind == "table"]
    text = " ".join(doc.text.split())
    assert "committee met on Monday" in text and "asked for a clearer summary" in text
    assert text.index("The committee") < text.index("Members asked")  # the left column is read first


def test_pdf_table_continued_in_a_second_column_is_one_table() -> None:
    buffer, c = _canvas()
    c.setFont("Helvetica", 10)
    for i in range(10):
        row = 400 - 14 * i
        for x, value in ((72, str(i + 1)), (110, str(100 + i)), (150, str(200 + i))):
            c.drawString(x, row, value)
        if i < 6:
            for x, value in ((330, str(i + 11)), (370, str(110 + i)), (410, str(210 + i))):
                c.drawString(x, row, value)
    c.showPage()
    c.save()
    doc = parse(buffer.getvalue(), "continued.pdf")
    tables = [block for block in doc.blocks if block.kind == "table"]
    assert len(tables) == 1
    rows = _pipe_rows(tables[0].text)
    assert rows == [[str(i + 1), str(100 + i), str(200 + i)] for i in range(16)]


SECTIONED = [
    ["Group", "Count", "Share"],
    ["Adults", "", ""],
    ["Working full time", "1,200", "40%"],
    ["Retired or not in the labour force", "900", "30%"],
    ["Students", "300", "10%"],
    ["Children", "", ""],
    ["Under five", "350", "12%"],
    ["Five to fifteen", "250", "8%"],
]


def _sectioned_table(c, top: float) -> None:
    """SECTIONED drawn borderless: section labels on rows of their own, one label wrapped onto a second
    line set closer than the rows, dot leaders after the labels, values right-aligned."""
    c.setFont("Helvetica", 10)
    y = top
    for label, count, share in SECTIONED:
        if label == "Retired or not in the labour force":
            c.drawString(80, y, "Retired or not in ........")
            c.drawString(80, y - 11, "the labour force")
        elif count:
            c.drawString(80 if label != "Group" else 72, y, label + (" ........" if label != "Group" else ""))
        else:
            c.drawString(72, y, label)
        if count:
            c.drawRightString(260, y, count)
            c.drawRightString(330, y, share)
        y -= 27 if label == "Retired or not in the labour force" else 16


def test_pdf_borderless_table_keeps_section_rows_and_wrapped_labels() -> None:
    buffer, c = _canvas()
    _sectioned_table(c, 700)
    c.showPage()
    c.save()
    doc = parse(buffer.getvalue(), "sectioned.pdf")
    tables = [block for block in doc.blocks if block.kind == "table"]
    assert len(tables) == 1
    assert _pipe_rows(tables[0].text) == SECTIONED


def test_pdf_two_borderless_tables_on_one_page_stay_apart() -> None:
    buffer, c = _canvas()
    _sectioned_table(c, 760)
    c.setFont("Helvetica", 10)
    c.drawString(72, 612, "Table 2")  # a short caption right under the first table
    second = [["Code", "Name", "Price"], ["A1", "Bolts", "4.20"], ["B7", "Nuts", "2.10"]]
    for i, row in enumerate(second):
        for x, value in zip((72, 110, 420), row, strict=True):
            c.drawString(x, 596 - 16 * i, value)
    c.showPage()
    c.save()
    doc = parse(buffer.getvalue(), "two.pdf")
    tables = [block for block in doc.blocks if block.kind == "table"]
    assert [_pipe_rows(t.text) for t in tables] == [SECTIONED, second]
    assert doc.markdown.index("Table 2") < doc.markdown.index("| Code")


def test_html_cells_spanning_rows_and_columns_repeat_and_keep_later_cells_in_their_columns() -> None:
    page = (
        b"<html><body><table><tr><th colspan='3'>Hours per team</th></tr>"
        b"<tr><th>Team</th><th colspan='2'>Hours</th></tr>"
        b"<tr><td rowspan='2'>Ops</td><td>4</td><td>5</td></tr><tr><td>6</td><td>7</td></tr>"
        b"<tr><td>Dev</td><td>8</td><td rowspan='9'>9</td></tr></table></body></html>"
    )
    doc = parse(page, "hours.html")
    assert doc.parser == "local/html"
    rows = ["| Hours per team |  |  |", "| --- | --- | --- |", "| Team | Hours | Hours |", "| Ops | 4 | 5 |"]
    assert "\n".join([*rows, "| Ops | 6 | 7 |", "| Dev | 8 | 9 |"]) in doc.markdown  # a title row once


def test_xlsx_merged_cells_repeat_over_the_cells_they_cover_unless_they_span_the_sheet() -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Staff by region"])
    sheet.merge_cells("A1:C1")
    sheet.append(["Region", "Year", None])
    sheet.merge_cells("B2:C2")
    sheet.append(["North", 2023, 2024])
    sheet.append([None, 5, 6])
    sheet.merge_cells("A3:A4")
    buffer = io.BytesIO()
    book.save(buffer)
    doc = parse(buffer.getvalue(), "staff.xlsx")
    rows = ["| Staff by region |  |  |", "| --- | --- | --- |", "| Region | Year | Year |"]
    assert "\n".join([*rows, "| North | 2023 | 2024 |", "| North | 5 | 6 |"]) in doc.markdown
