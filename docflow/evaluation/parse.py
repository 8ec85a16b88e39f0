"""The `parse` section of `docflow eval`: parsed markdown against the truth markdown and tables.

- `text_similarity`: both sides reduced to plain words (markdown syntax and escapes, page markers, case and
  punctuation removed), scored as 1 - normalised Levenshtein distance over the word sequences (rapidfuzz).
- `table_cell_recall`: share of the non-empty truth table cells (truth `tables_markdown`, one pipe table per
  `<!-- table N -->` marker) found at the same row and column of a parsed pipe table. Each truth table is
  matched to the parsed table and the row/column offset (up to 3 either way: a parser may add a title row or
  a row-label column) that find the most of its cells.
Documents are broken down as `born_digital_pdf`, `scanned` (images, or PDFs whose parse was OCRed) and
`other`; a failed document scores 0.

The dev set has no scanned receipt with truth text, so OCR is also measured on what has a known text:
`ocr_rendered_receipt` / `ocr_rendered_invoice` render the first page of each born-digital receipt and
invoice PDF to a 200 dpi image, OCR it and score it against that page's own text layer, both read in
visual row order — synthetic clean scans, not camera photos.
"""

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from docflow.errors import NotFound
from docflow.pipeline import Runtime

if TYPE_CHECKING:
    from docflow.evaluation import Item

_OFFSETS = range(-3, 4)


def normalise_words(markdown: str) -> list[str]:
    """Plain lowercase words of markdown: comments, table rules, emphasis, escapes and punctuation dropped."""
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.DOTALL)
    # `\_\_\_` is how markdown writes a `___` blank: one word, not three
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|~])", r"\1", text)
    text = re.sub(r"(?m)^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$", " ", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)|<[^>]+>", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.findall(r"\w+", text.casefold())


def text_similarity(parsed: str, truth: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = normalise_words(parsed), normalise_words(truth)
    if not a and not b:
        return 1.0
    return float(Levenshtein.normalized_similarity(a, b))


def _cell(value: str) -> str:
    return " ".join(re.findall(r"\w+", value.casefold()))


def pipe_tables(markdown: str) -> list[list[list[str]]]:
    """Every pipe table of the markdown as rows of normalised cells (the rule row dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*markdown.split("\n"), ""]:
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = re.split(r"(?<!\\)\|", stripped.strip("|"))
            if all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells):
                continue
            current.append([_cell(c) for c in cells])
        elif current:
            tables.append(current)
            current = []
    return tables


def truth_tables(markdown: str) -> list[list[list[str]]]:
    parts = re.split(r"<!--\s*table\s+\d+\s*-->", markdown)
    return [table for part in parts for table in pipe_tables(part)[:1]]


def _found(truth: list[list[str]], parsed: list[list[str]]) -> int:
    best = 0
    for dr in _OFFSETS:
        for dc in _OFFSETS:
            hits = 0
            for r, row in enumerate(truth):
                pr = r + dr
                if not 0 <= pr < len(parsed):
                    continue
                prow = parsed[pr]
                hits += sum(
                    1
                    for c, cell in enumerate(row)
                    if cell and 0 <= c + dc < len(prow) and prow[c + dc] == cell
                )
            best = max(best, hits)
    return best


def table_cells(truth_md: str, parsed_md: str) -> tuple[int, int]:
    """(found, total) non-empty truth cells."""
    parsed = pipe_tables(parsed_md)
    found = total = 0
    for table in truth_tables(truth_md):
        total += sum(1 for row in table for cell in row if cell)
        found += max((_found(table, candidate) for candidate in parsed), default=0)
    return found, total


def _kind(item: "Item", parser: str) -> str:
    suffix = item.path.suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff") or "rapidocr" in parser:
        return "scanned"
    return "born_digital_pdf" if suffix == ".pdf" else "other"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def parse_section(rt: Runtime, items: list["Item"], rendered: bool = True) -> dict[str, Any]:
    """Text similarity and table cell recall of the items with such truth (plus, when `rendered`, the OCR
    of rendered receipt and invoice pages)."""
    details: list[dict[str, Any]] = []
    sims: dict[str, list[float]] = defaultdict(list)
    cells: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        text_name, tables_name = item.truth.get("text_markdown"), item.truth.get("tables_markdown")
        if not item.truth_dir or not (text_name or tables_name):
            continue
        try:
            parsed = rt.store.load_parsed(item.doc_id)
            markdown, parser = parsed.markdown, parsed.parser
        except NotFound:
            markdown, parser = "", "(failed)"
        kind = _kind(item, parser)
        row: dict[str, Any] = {"path": item.path.name, "kind": kind, "parser": parser}
        if text_name:
            truth = (item.truth_dir / text_name).read_text(encoding="utf-8")
            row["text_similarity"] = round(text_similarity(markdown, truth), 4)
            sims[kind].append(row["text_similarity"])
            sims["all"].append(row["text_similarity"])
        if tables_name:
            found, total = table_cells((item.truth_dir / tables_name).read_text(encoding="utf-8"), markdown)
            row["table_cells"] = {"found": found, "total": total}
            for key in (kind, "all"):
                cells[key][0] += found
                cells[key][1] += total
        details.append(row)
    for row in rendered_ocr(items) if rendered else []:
        sims[row["kind"]].append(row["text_similarity"])
        details.append(row)
    kinds = sorted(set(sims) | set(cells) - {"all"})
    return {
        "text_similarity": _mean(sims["all"]),
        "table_cell_recall": round(cells["all"][0] / cells["all"][1], 4) if cells["all"][1] else None,
        "n_text": len(sims["all"]),
        "n_table_cells": cells["all"][1],
        "by_kind": {
            kind: {
                "text_similarity": _mean(sims.get(kind, [])),
                "n_text": len(sims.get(kind, [])),
                "table_cell_recall": round(cells[kind][0] / cells[kind][1], 4) if cells[kind][1] else None,
                "n_table_cells": cells[kind][1],
            }
            for kind in kinds
            if kind != "all"
        },
        "documents": details,
    }


_OCR_DOC_TYPES = ("receipt", "invoice")


def rendered_pages(items: list["Item"]):
    """(item, image, reference text) for the first page of each born-digital receipt and invoice PDF: the page
    rendered at 200 dpi and its text layer read in visual rows top to bottom, left to right. PDFs without a
    usable text layer are left out (no reference)."""
    from docflow.backends.parse import pdf_tables
    from docflow.backends.parse.pdf import parse_pdf, render_page
    from docflow.errors import DocflowError
    from docflow.sniff import open_pdf

    for item in items:
        if item.doc_type not in _OCR_DOC_TYPES or item.path.suffix.lower() != ".pdf":
            continue
        data = item.path.read_bytes()
        try:
            layer = parse_pdf(data, 1000, ocr=False)
            if layer.warnings or not layer.text.strip():
                continue  # no usable text layer to compare with
            with open_pdf(data) as document:
                page = document[0]
                textpage = page.get_textpage()
                words = pdf_tables.page_words(textpage.raw)
                textpage.close()
                page.close()
                image = render_page(document, 0, dpi=200)
        except DocflowError:
            continue
        yield item, image, "\n".join(" ".join(w.text for w in row) for row in pdf_tables.text_rows(words))


def rendered_ocr(items: list["Item"]) -> list[dict[str, Any]]:
    """OCR of the first page of born-digital receipt and invoice PDFs rendered to images, scored against the
    page's text layer. Both sides are read the same way (visual rows top to bottom, left to right) so the
    score measures recognition, not layout."""
    from docflow.backends.parse.ocr import ocr_lines
    from docflow.errors import DocflowError

    rows: list[dict[str, Any]] = []
    for item, image, reference in rendered_pages(items):
        try:
            ocred = "\n".join(text for text, *_ in ocr_lines(image))
        except DocflowError:
            continue
        rows.append(
            {
                "path": item.path.name,
                "kind": f"ocr_rendered_{item.doc_type}",
                "parser": "local/rapidocr (page 1 rendered at 200 dpi)",
                "text_similarity": round(text_similarity(ocred, reference), 4),
            }
        )
    return rows
