"""Word and slide documents made here with python-docx / python-pptx: lists, merged table cells, reading
order of slide shapes."""

import io

from docflow_tests.test_parse_formats import parse


def _docx(build) -> bytes:
    import docx

    document = docx.Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _numbering_removed(paragraph) -> None:
    """Give a list-styled paragraph `numId 0`, as Word does for a list's lead-in line."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    num_pr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
    num_id = OxmlElement("w:numId")
    num_id.set(qn("w:val"), "0")
    num_pr.append(num_id)


def test_docx_numbered_and_bulleted_lists_keep_their_markers() -> None:
    def build(document) -> None:
        _numbering_removed(document.add_paragraph("Before you start:", style="List Bullet"))
        document.add_paragraph("Open the valve", style="List Number")
        document.add_paragraph("Wait a minute", style="List Number")
        document.add_paragraph("Close the valve", style="List Number")
        document.add_paragraph("Then tidy up.")
        document.add_paragraph("Gloves", style="List Bullet")

    doc = parse(_docx(build), "steps.docx")
    assert "Before you start:\n\n1. Open the valve\n2. Wait a minute\n3. Close the valve" in doc.markdown
    assert "Then tidy up.\n\n- Gloves" in doc.markdown
    assert [b.kind for b in doc.blocks] == ["paragraph", "list", "paragraph", "list"]
    assert "1. Open" not in doc.text and "Open the valve" in doc.text


def test_docx_merged_cells_repeat_their_text_over_the_grid() -> None:
    def build(document) -> None:
        table = document.add_table(rows=3, cols=3)
        table.cell(0, 0).text = "Region"
        table.cell(0, 1).merge(table.cell(0, 2)).text = "Sales"
        table.cell(1, 0).merge(table.cell(2, 0)).text = "North"
        for (r, c), value in {(1, 1): "Q1", (1, 2): "Q2", (2, 1): "10", (2, 2): "12"}.items():
            table.cell(r, c).text = value

    doc = parse(_docx(build), "merged.docx")
    assert "| Region | Sales | Sales |\n| --- | --- | --- |\n| North | Q1 | Q2 |\n| North | 10 | 12 |" in (
        doc.markdown
    )


def test_docx_and_pptx_cells_spanning_the_whole_table_keep_their_text_once() -> None:
    from pptx.util import Inches

    def build_docx(document) -> None:
        table = document.add_table(rows=2, cols=3)
        table.cell(0, 0).merge(table.cell(0, 2)).text = "Costs in 2024"
        for c, value in enumerate(["Rent", "Staff", "Tax"]):
            table.cell(1, c).text = value

    def build_pptx(deck) -> None:
        slide = deck.slides.add_slide(deck.slide_layouts[6])
        table = slide.shapes.add_table(2, 3, Inches(1), Inches(1), Inches(6), Inches(2)).table
        table.cell(0, 0).merge(table.cell(0, 2))
        table.cell(0, 0).text = "Costs in 2024"
        for c, value in enumerate(["Rent", "Staff", "Tax"]):
            table.cell(1, c).text = value

    expected = "| Costs in 2024 |  |  |\n| --- | --- | --- |\n| Rent | Staff | Tax |"
    assert expected in parse(_docx(build_docx), "costs.docx").markdown
    assert expected in parse(_pptx(build_pptx), "costs.pptx").markdown


def test_docx_row_starting_late_keeps_its_cells_in_their_columns() -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def build(document) -> None:
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text, table.cell(0, 1).text = "Name", "Value"
        row = table.rows[1]._tr
        row.remove(row.tc_lst[0])  # the row's first grid column has no cell ...
        before = OxmlElement("w:gridBefore")
        before.set(qn("w:val"), "1")
        row.get_or_add_trPr().append(before)  # ... and says so
        row.tc_lst[0].clear_content()
        row.tc_lst[0].add_p().add_r().text = "42"

    doc = parse(_docx(build), "late.docx")
    assert "| Name | Value |\n| --- | --- |\n|  | 42 |" in doc.markdown


def _pptx(build) -> bytes:
    from pptx import Presentation

    deck = Presentation()
    build(deck)
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def _text_box(slide, text: str, left: float, top: float, width: float = 2.0, height: float = 1.0):
    from pptx.util import Inches

    box = slide.shapes.add_textbox(Inches(left), Inches(top), Inches(width), Inches(height))
    box.text_frame.text = text
    return box


def test_pptx_shapes_are_read_top_to_bottom_and_side_by_side_left_to_right() -> None:
    def build(deck) -> None:
        slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
        _text_box(slide, "Footnote at the bottom", 1, 6.5)  # written first, read last
        _text_box(slide, "Right column", 5, 2.2, height=3)
        _text_box(slide, "Left column", 1, 2.5, height=2)
        slide.shapes.title.text = "Slide title"  # its position comes from the layout

    markdown = parse(_pptx(build), "deck.pptx").markdown
    order = [
        markdown.index(t) for t in ("Slide title", "Left column", "Right column", "Footnote at the bottom")
    ]
    assert order == sorted(order), markdown


def test_pptx_grouped_shapes_stay_together_in_their_own_order() -> None:
    from pptx.util import Inches

    def build(deck) -> None:
        slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
        _text_box(slide, "Below the group", 1, 5)
        group = slide.shapes.add_group_shape()
        second = group.shapes.add_textbox(Inches(1), Inches(2), Inches(2), Inches(1))
        second.text_frame.text = "Second in group"
        first = group.shapes.add_textbox(Inches(1), Inches(1), Inches(2), Inches(1))
        first.text_frame.text = "First in group"

    markdown = parse(_pptx(build), "deck.pptx").markdown
    order = [markdown.index(t) for t in ("First in group", "Second in group", "Below the group")]
    assert order == sorted(order), markdown


def test_pptx_numbered_paragraphs_and_paragraphs_without_bullets() -> None:
    from pptx.oxml.ns import qn

    def build(deck) -> None:
        slide = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
        slide.shapes.title.text = "Plan"
        body = slide.placeholders[1].text_frame
        body.text = "We will:"
        for line in ("Measure", "Decide"):
            body.add_paragraph().text = line
        body.paragraphs[0]._p.get_or_add_pPr().append(body.paragraphs[0]._p.makeelement(qn("a:buNone"), {}))
        steps = _text_box(slide, "Open", 1, 6).text_frame
        steps.add_paragraph().text = "Close"
        for paragraph in steps.paragraphs:
            paragraph._p.get_or_add_pPr().append(
                paragraph._p.makeelement(qn("a:buAutoNum"), {"type": "arabicPeriod"})
            )

    markdown = parse(_pptx(build), "deck.pptx").markdown
    assert "We will:\n\n- Measure\n- Decide" in markdown
    assert "1. Open\n2. Close" in markdown


def test_pptx_merged_table_cells_repeat_their_text() -> None:
    from pptx.util import Inches

    def build(deck) -> None:
        slide = deck.slides.add_slide(deck.slide_layouts[6])
        table = slide.shapes.add_table(3, 3, Inches(1), Inches(1), Inches(6), Inches(2)).table
        table.cell(0, 1).merge(table.cell(0, 2))
        table.cell(0, 1).text = "Class"
        table.cell(1, 0).merge(table.cell(2, 0))
        table.cell(1, 0).text = "R1"
        for (r, c), value in {(1, 1): "A", (1, 2): "B", (2, 1): "yes", (2, 2): "no"}.items():
            table.cell(r, c).text = value

    markdown = parse(_pptx(build), "deck.pptx").markdown
    assert "|  | Class | Class |\n| --- | --- | --- |\n| R1 | A | B |\n| R1 | yes | no |" in markdown


def test_pptx_slides_follow_the_presentation_order_not_file_names() -> None:
    def build(deck) -> None:
        for title in ("Alpha", "Beta"):
            deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = title
        slide_ids = deck.slides._sldIdLst
        slide_ids.insert(0, slide_ids[1])  # Beta moved before Alpha; its file is still slide2.xml

    doc = parse(_pptx(build), "deck.pptx")
    assert doc.markdown.index("Beta") < doc.markdown.index("Alpha")
    assert {b.page for b in doc.blocks if "Beta" in b.text} == {1}


def test_odt_cells_spanning_rows_and_columns_repeat_their_text() -> None:
    import zipfile

    content = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2">
<office:body><office:text><table:table>
<table:table-row><table:table-cell><text:p>Team</text:p></table:table-cell>
<table:table-cell table:number-columns-spanned="2"><text:p>Hours</text:p></table:table-cell>
<table:covered-table-cell/></table:table-row>
<table:table-row><table:table-cell table:number-rows-spanned="2"><text:p>Ops</text:p></table:table-cell>
<table:table-cell><text:p>4</text:p></table:table-cell><table:table-cell><text:p>5</text:p></table:table-cell>
</table:table-row>
<table:table-row><table:covered-table-cell/><table:table-cell><text:p>6</text:p></table:table-cell>
<table:table-cell><text:p>7</text:p></table:table-cell></table:table-row>
</table:table></office:text></office:body></office:document-content>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        archive.writestr("content.xml", content)
    markdown = parse(buffer.getvalue(), "table.odt").markdown
    assert "| Team | Hours | Hours |\n| --- | --- | --- |\n| Ops | 4 | 5 |\n| Ops | 6 | 7 |" in markdown


def test_pptx_shapes_wrapped_for_compatibility_are_read_once() -> None:
    import zipfile

    def build(deck) -> None:
        slide = deck.slides.add_slide(deck.slide_layouts[6])
        _text_box(slide, "Plain box", 1, 1)

    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_pptx(build))) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "ppt/slides/slide1.xml":  # the box as a newer app writes it, with a fallback
                xml = data.decode()
                start, end = xml.index("<p:sp>"), xml.index("</p:sp>") + len("</p:sp>")
                shape = xml[start:end]
                wrapped = (
                    '<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
                    f'<mc:Choice Requires="p14">{shape}</mc:Choice><mc:Fallback>{shape}</mc:Fallback>'
                    "</mc:AlternateContent>"
                )
                data = (xml[:start] + wrapped + xml[end:]).encode()
            target.writestr(item, data)
    markdown = parse(buffer.getvalue(), "deck.pptx").markdown
    assert markdown.count("Plain box") == 1


def test_docx_text_box_with_a_compatibility_fallback_is_read_once() -> None:
    from docx.oxml import parse_xml

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    box = "<w:txbxContent><w:p><w:r><w:t>Boxed note</w:t></w:r></w:p></w:txbxContent>"
    run = (
        f'<w:r xmlns:w="{w}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        f'<mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>{box}</w:drawing></mc:Choice>'
        f"<mc:Fallback><w:pict>{box}</w:pict></mc:Fallback></mc:AlternateContent></w:r>"
    )

    def build(document) -> None:
        document.add_paragraph("See the box: ")._p.append(parse_xml(run))

    markdown = parse(_docx(build), "box.docx").markdown
    assert markdown.count("Boxed note") == 1 and "See the box:" in markdown
