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
