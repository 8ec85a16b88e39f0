"""Word processing and slides read straight from their XML (zip + ElementTree): DOCX, PPTX and ODT.

Headings from paragraph styles/outline levels, lists from numbering (bullets as `-`, numbered levels as
`1.`), tables as pipe tables, slides as pages with their shapes in reading order.

A merged table cell's text is repeated in every grid position it covers: a pipe table cannot express a
span, and a covered position left empty would read as an empty cell (a row label or a column header
missing from the rows and columns it heads). A cell spanning the table's whole width (a title or section
row) heads no column: its text stays once, in the first position.
"""

import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile

from docflow.backends.parse.guard import Deadline, open_zip, read_member
from docflow.backends.parse.markdown import escape_line_starts, from_markdown, pipe_table
from docflow.errors import BadDocument
from docflow.models import ParsedDocument

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"


def _xml(archive: zipfile.ZipFile, name: str, what: str) -> ET.Element:
    data = read_member(archive, name, what)
    if b"<!ENTITY" in data[:4096]:
        raise BadDocument(f"the {what} file declares XML entities in {name} (refused)")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadDocument(f"the {what} file is corrupt ({name}: {exc})") from exc


def _spread(text: str, span: int, width: int) -> list[str]:
    """The positions a cell spanning `span` columns covers: its text in each, once if it spans them all."""
    return [text] + [""] * (span - 1) if 1 < width <= span else [text] * span


def _table(rows: list[list[str]]) -> str:
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    return pipe_table(rows) if rows else ""


# --- DOCX -----------------------------------------------------------------------------------------------


def parse_docx(data: bytes, deadline: Deadline) -> ParsedDocument:
    with open_zip(data, "DOCX") as archive:
        body = _xml(archive, "word/document.xml", "DOCX").find(f"{W}body")
        styles = _docx_heading_styles(archive)
        numbering = _DocxNumbering(archive)
        if body is None:
            raise BadDocument("the DOCX file has no document body")
        parts = _docx_blocks(body, styles, deadline, numbering)
    return from_markdown(_join_parts(parts), parser="local/docx")


def _docx_blocks(
    container: ET.Element, styles: dict[str, int], deadline: Deadline, numbering: "_DocxNumbering"
) -> list[str]:
    parts: list[str] = []
    for child in container:
        deadline.check("DOCX body")
        if child.tag == f"{W}p":
            parts.append(_docx_paragraph(child, styles, numbering))
        elif child.tag == f"{W}tbl":
            cells = [tr.findall(f"{W}tc") for tr in child.findall(f"{W}tr")]
            if cells and all(len(row) == 1 for row in cells):  # a layout box: its content, not a table
                for row in cells:
                    parts.extend(_docx_blocks(row[0], styles, deadline, numbering))
            else:
                parts.append(_table(_docx_rows(child, styles)))
        elif child.tag == f"{W}sdt":  # content controls (e.g. a table of contents) hold paragraphs
            content = child.find(f"{W}sdtContent")
            if content is not None:
                parts.extend(_docx_blocks(content, styles, deadline, numbering))
    return parts


def _docx_heading_styles(archive: zipfile.ZipFile) -> dict[str, int]:
    """styleId -> heading level, from the style names ('heading 1', 'Title') and outline levels."""
    if "word/styles.xml" not in archive.namelist():
        return {}
    levels: dict[str, int] = {}
    for style in _xml(archive, "word/styles.xml", "DOCX").iter(f"{W}style"):
        style_id = style.get(f"{W}styleId", "")
        name_el = style.find(f"{W}name")
        name = (name_el.get(f"{W}val", "") if name_el is not None else style_id).lower()
        outline = style.find(f"{W}pPr/{W}outlineLvl")
        if name == "title":
            levels[style_id] = 1
        elif match := re.fullmatch(r"heading\s*(\d)", name):
            levels[style_id] = min(int(match.group(1)), 6)
        elif (
            outline is not None and outline.get(f"{W}val", "9").isdigit() and int(outline.get(f"{W}val")) < 6
        ):
            levels[style_id] = int(outline.get(f"{W}val")) + 1
    return levels


def _docx_text(element: ET.Element) -> str:
    out: list[str] = []
    _collect_text(element, out)
    return "".join(out)


def _collect_text(element: ET.Element, out: list[str]) -> None:
    for node in element:
        if node.tag == f"{W}t":
            out.append(node.text or "")
        elif node.tag == f"{W}tab":
            out.append("\t")
        elif node.tag in (f"{W}br", f"{W}cr"):
            out.append("\n")
        elif node.tag != f"{MC}Fallback":  # a drawing's fallback repeats its choice (e.g. a text box)
            _collect_text(node, out)


def _docx_paragraph(p: ET.Element, styles: dict[str, int], numbering: "_DocxNumbering") -> str:
    text = " ".join(_docx_text(p).split()) if "\n" not in _docx_text(p) else _docx_text(p).strip()
    if not text:
        return ""
    style = p.find(f"{W}pPr/{W}pStyle")
    style_id = style.get(f"{W}val", "") if style is not None else ""
    level = styles.get(style_id) or _style_level(style_id)
    if level:
        return f"{'#' * level} {' '.join(text.split())}"
    num_pr = p.find(f"{W}pPr/{W}numPr")
    num_id_el = num_pr.find(f"{W}numId") if num_pr is not None else None
    ilvl_el = num_pr.find(f"{W}ilvl") if num_pr is not None else None
    depth = _int(ilvl_el.get(f"{W}val") if ilvl_el is not None else None, 0)
    num_id = num_id_el.get(f"{W}val") if num_id_el is not None else numbering.style_num.get(style_id)
    if num_id == "0":  # numbering explicitly removed (e.g. a list style's lead-in paragraph)
        return escape_line_starts(text)
    if num_id is not None or style_id.lower().startswith("list"):
        marker = numbering.marker(num_id, depth) if num_id is not None else "-"
        if marker is None:  # a level drawn without a number or bullet
            return escape_line_starts(text)
        return f"{'  ' * depth}{marker} {' '.join(text.split())}"
    return escape_line_starts(text)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class _DocxNumbering:
    """List markers from `word/numbering.xml`: `-` for bullet levels, the running number (`3.`) for
    numbered ones, counted per list and level as Word does (a level restarts under a new parent item)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.formats: dict[str, dict[int, tuple[str, int]]] = {}  # numId -> level -> (numFmt, start)
        self.style_num: dict[str, str] = {}  # styleId -> numId, for list styles that carry numbering
        self.counters: dict[str, dict[int, int]] = {}
        names = set(archive.namelist())
        if "word/styles.xml" in names:
            for style in _xml(archive, "word/styles.xml", "DOCX").iter(f"{W}style"):
                num_id = style.find(f"{W}pPr/{W}numPr/{W}numId")
                if num_id is not None and num_id.get(f"{W}val"):
                    self.style_num[style.get(f"{W}styleId", "")] = num_id.get(f"{W}val", "")
        if "word/numbering.xml" not in names:
            return
        root = _xml(archive, "word/numbering.xml", "DOCX")
        abstract: dict[str, dict[int, tuple[str, int]]] = {}
        for node in root.findall(f"{W}abstractNum"):
            abstract[node.get(f"{W}abstractNumId", "")] = _levels(node)
        for node in root.findall(f"{W}num"):
            ref = node.find(f"{W}abstractNumId")
            levels = dict(abstract.get(ref.get(f"{W}val", "") if ref is not None else "", {}))
            for override in node.findall(f"{W}lvlOverride"):
                level = _int(override.get(f"{W}ilvl"), 0)
                levels.update(_levels(override))
                start = override.find(f"{W}startOverride")
                if start is not None and level in levels:
                    levels[level] = (levels[level][0], _int(start.get(f"{W}val"), 1))
            self.formats[node.get(f"{W}numId", "")] = levels

    def marker(self, num_id: str, depth: int) -> str | None:
        fmt, start = self.formats.get(num_id, {}).get(depth, ("bullet", 1))
        if fmt == "none":
            return None
        counters = self.counters.setdefault(num_id, {})
        for deeper in [level for level in counters if level > depth]:
            del counters[deeper]  # a new item at this level restarts its sub-levels
        counters[depth] = counters.get(depth, start - 1) + 1
        return "-" if fmt == "bullet" else f"{counters[depth]}."


def _levels(node: ET.Element) -> dict[int, tuple[str, int]]:
    levels = {}
    for lvl in node.findall(f"{W}lvl"):
        fmt = lvl.find(f"{W}numFmt")
        start = lvl.find(f"{W}start")
        levels[_int(lvl.get(f"{W}ilvl"), 0)] = (
            fmt.get(f"{W}val", "bullet") if fmt is not None else "bullet",
            _int(start.get(f"{W}val") if start is not None else None, 1),
        )
    return levels


def _style_level(style_id: str) -> int | None:
    match = re.fullmatch(r"(?i)heading(\d)", style_id)
    return min(int(match.group(1)), 6) if match else (1 if style_id.lower() == "title" else None)


def _docx_rows(tbl: ET.Element, styles: dict[str, int]) -> list[list[str]]:
    """Rows on the table grid: cells skipped at a row's start (`gridBefore`) are empty, a cell spanning
    columns (`gridSpan`) or continuing a vertical merge (`vMerge`) repeats the merged cell's text."""
    rows: list[list[str]] = []
    width = len(tbl.findall(f"{W}tblGrid/{W}gridCol"))
    for tr in tbl.findall(f"{W}tr"):
        before = tr.find(f"{W}trPr/{W}gridBefore")
        row: list[str] = [""] * min(_int(before.get(f"{W}val") if before is not None else None, 0), 64)
        for tc in tr.findall(f"{W}tc"):
            props = tc.find(f"{W}tcPr")
            span_el = props.find(f"{W}gridSpan") if props is not None else None
            span = min(max(_int(span_el.get(f"{W}val") if span_el is not None else None, 1), 1), 64)
            vmerge = props.find(f"{W}vMerge") if props is not None else None
            continued = vmerge is not None and vmerge.get(f"{W}val", "continue") == "continue"
            if continued:
                above = rows[-1] if rows else []
                text = above[len(row)] if len(row) < len(above) else ""
            else:
                text = _cell_text(tc)
            row.extend(_spread(text, span, width))
        rows.append(row)
    return rows


def _cell_text(tc: ET.Element) -> str:
    """A cell's paragraphs on one line; a nested table flattened ('a b; c d')."""
    pieces = []
    for child in tc:
        if child.tag == f"{W}p":
            pieces.append(" ".join(_docx_text(child).split()))
        elif child.tag == f"{W}tbl":
            pieces.append("; ".join(" ".join(r) for r in _docx_rows(child, {})))
    return " ".join(piece for piece in pieces if piece)


_LIST_ITEM = re.compile(r"\s*(-|\d+\.) ")


def _join_parts(parts: list[str]) -> str:
    """Blocks separated by blank lines, but consecutive list items kept together as one list."""
    out: list[str] = []
    for part in (p for p in parts if p and p.strip()):
        if out and _LIST_ITEM.match(part) and _LIST_ITEM.match(out[-1]):
            out[-1] += "\n" + part
        else:
            out.append(part)
    return "\n\n".join(out) + "\n"


# --- PPTX -----------------------------------------------------------------------------------------------

R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_Box = tuple[int, int, int, int]  # left, top, width, height (EMU)


def parse_pptx(data: bytes, deadline: Deadline) -> ParsedDocument:
    with open_zip(data, "PPTX") as archive:
        slides = _slide_names(archive)
        if not slides:
            raise BadDocument("the PPTX file has no slides")
        parts: list[str] = []
        boxes = _PlaceholderBoxes(archive)
        for number, name in enumerate(slides, start=1):
            deadline.check(f"slide {number}")
            parts.append(f"<!-- page {number} -->")
            parts.extend(_slide_parts(_xml(archive, name, "PPTX"), boxes.for_slide(name)))
    return from_markdown(_join_parts(parts), parser="local/pptx", pages=len(slides))


def _rels(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationships: id -> (type, target part name)."""
    folder, _, base = part.rpartition("/")
    name = f"{folder}/_rels/{base}.rels"
    if name not in archive.namelist():
        return {}
    out = {}
    for rel in _xml(archive, name, "PPTX").iter(f"{_RELS}Relationship"):
        target = rel.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"{folder}/{target}")
        out[rel.get("Id", "")] = (rel.get("Type", "").rsplit("/", 1)[-1], resolved)
    return out


def _slide_names(archive: zipfile.ZipFile) -> list[str]:
    """Slides in the presentation's order (its slide list), which file names do not follow once slides
    have been moved; by file number when the list is missing."""
    names = set(archive.namelist())
    if "ppt/presentation.xml" in names:
        rels = _rels(archive, "ppt/presentation.xml")
        listed = [
            rels.get(node.get(f"{R}id", ""), ("", ""))[1]
            for node in _xml(archive, "ppt/presentation.xml", "PPTX").iter(f"{P}sldId")
        ]
        listed = [name for name in listed if name in names]
        if listed:
            return listed
    return sorted(
        (n for n in names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)),
        key=lambda n: int(re.findall(r"\d+", n)[-1]),
    )


class _PlaceholderBoxes:
    """Where a slide's placeholders sit when the slide does not say: inherited from its layout, then from
    the layout's master (matched by placeholder index, then by type)."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.cache: dict[str, dict[str, _Box]] = {}

    def for_slide(self, slide: str) -> list[dict[str, _Box]]:
        chain: list[dict[str, _Box]] = []
        part = slide
        for kind in ("slideLayout", "slideMaster"):
            target = next((t for k, t in _rels(self.archive, part).values() if k == kind), None)
            if target is None or target not in self.archive.namelist():
                break
            if target not in self.cache:
                self.cache[target] = self._boxes(target)
            chain.append(self.cache[target])
            part = target
        return chain

    def _boxes(self, part: str) -> dict[str, _Box]:
        boxes: dict[str, _Box] = {}
        for shape in _xml(self.archive, part, "PPTX").iter(f"{P}sp"):
            ph = shape.find(f"{P}nvSpPr/{P}nvPr/{P}ph")
            box = _own_box(shape)
            if ph is None or box is None:
                continue
            boxes.setdefault(f"idx:{ph.get('idx', '0')}", box)
            boxes.setdefault(f"type:{_ph_type(ph)}", box)
        return boxes


def _ph_type(ph: ET.Element) -> str:
    kind = ph.get("type", "obj")
    return {"obj": "body", "ctrTitle": "title", "subTitle": "body"}.get(kind, kind)


def _own_box(shape: ET.Element) -> _Box | None:
    xfrm = shape.find(f"{P}spPr/{A}xfrm")
    if xfrm is None:
        xfrm = shape.find(f"{P}grpSpPr/{A}xfrm")
    if xfrm is None:
        xfrm = shape.find(f"{P}xfrm")
    off = xfrm.find(f"{A}off") if xfrm is not None else None
    ext = xfrm.find(f"{A}ext") if xfrm is not None else None
    if off is None or ext is None:
        return None
    return (_int(off.get("x"), 0), _int(off.get("y"), 0), _int(ext.get("cx"), 0), _int(ext.get("cy"), 0))


def _reading_order(items: list[tuple[_Box | None, ET.Element]]) -> list[ET.Element]:
    """Shapes as a reader takes them: in bands top to bottom, side by side shapes of a band (those
    overlapping vertically by at least half the shorter one) left to right. A shape with no position
    stays after the shape before it in the file."""
    placed: list[tuple[_Box, int, ET.Element]] = []
    last: _Box = (0, 0, 0, 0)
    for order, (box, shape) in enumerate(items):
        last = box or (last[0], last[1], 0, 0)
        placed.append((last, order, shape))
    placed.sort(key=lambda item: (item[0][1], item[0][0], item[1]))
    bands: list[tuple[int, int, list[tuple[_Box, int, ET.Element]]]] = []
    for item in placed:
        _, top, _, height = item[0]
        if bands:
            band_top, band_bottom, members = bands[-1]
            overlap = min(band_bottom, top + height) - max(band_top, top)
            shorter = min(height, band_bottom - band_top)
            if (shorter > 0 and overlap * 2 >= shorter) or (height == 0 and top < band_bottom):
                members.append(item)
                bands[-1] = (band_top, max(band_bottom, top + height), members)
                continue
        bands.append((top, top + height, [item]))
    return [
        shape
        for _, _, members in bands
        for _, _, shape in sorted(members, key=lambda item: (item[0][0], item[0][1], item[1]))
    ]


def _slide_parts(slide: ET.Element, inherited: list[dict[str, _Box]] | None = None) -> list[str]:
    tree = slide.find(f"{P}cSld/{P}spTree")
    if tree is None:
        return []
    titles, rest = _shape_parts(tree, inherited or [])
    return titles + rest


def _shape_parts(container: ET.Element, inherited: list[dict[str, _Box]]) -> tuple[list[str], list[str]]:
    """(title parts, other parts) of a shape tree or group, the others in reading order."""
    titles: list[str] = []
    items: list[tuple[_Box | None, ET.Element]] = []
    for shape in _members(container):
        ph = shape.find(f"{P}nvSpPr/{P}nvPr/{P}ph")
        if shape.tag == f"{P}sp" and ph is not None and ph.get("type") in ("title", "ctrTitle"):
            titles.extend(_text_parts(shape, ph))  # a slide's title heads it wherever it sits
        elif shape.tag in (f"{P}sp", f"{P}graphicFrame", f"{P}grpSp"):
            box = _own_box(shape)
            if box is None and ph is not None:
                keys = (f"idx:{ph.get('idx', '0')}", f"type:{_ph_type(ph)}")
                box = next((level[k] for level in inherited for k in keys if k in level), None)
            items.append((box, shape))
    parts: list[str] = []
    for shape in _reading_order(items):
        if shape.tag == f"{P}grpSp":  # its members in reading order among themselves
            group_titles, group_rest = _shape_parts(shape, [])
            parts.extend(group_titles + group_rest)
        elif shape.tag == f"{P}graphicFrame":
            parts.extend(_table(_pptx_rows(tbl)) for tbl in shape.iter(f"{A}tbl"))
        else:
            parts.extend(_text_parts(shape, shape.find(f"{P}nvSpPr/{P}nvPr/{P}ph")))
    return titles, parts


def _members(container: ET.Element) -> list[ET.Element]:
    """A shape tree's children, with shapes wrapped for compatibility (`mc:AlternateContent`) taken from
    their first choice (or fallback)."""
    out: list[ET.Element] = []
    for child in container:
        if child.tag == f"{MC}AlternateContent":
            choice = child.find(f"{MC}Choice")
            if choice is None:
                choice = child.find(f"{MC}Fallback")
            out.extend(choice if choice is not None else [])
        else:
            out.append(child)
    return out


def _text_parts(shape: ET.Element, placeholder: ET.Element | None) -> list[str]:
    kind = placeholder.get("type", "") if placeholder is not None else ""
    body = shape.find(f"{P}txBody")
    if body is None or kind == "sldNum":  # the slide number is the page marker already
        return []
    parts: list[str] = []
    counters: dict[int, int] = {}
    for paragraph in body.findall(f"{A}p"):
        text = " ".join("".join(t.text or "" for t in paragraph.iter(f"{A}t")).split())
        if not text:
            continue
        if kind in ("title", "ctrTitle"):
            parts.append(f"{'#' if kind == 'ctrTitle' else '##'} {text}")
            continue
        props = paragraph.find(f"{A}pPr")
        depth = _int(props.get("lvl") if props is not None else None, 0)
        auto = props.find(f"{A}buAutoNum") if props is not None else None
        for deeper in [level for level in counters if level > depth]:
            del counters[deeper]
        if auto is not None:  # an automatically numbered paragraph: its number as the list marker
            counters[depth] = counters.get(depth, _int(auto.get("startAt"), 1) - 1) + 1
            parts.append(f"{'  ' * depth}{counters[depth]}. {text}")
            continue
        counters.pop(depth, None)
        if props is not None and props.find(f"{A}buNone") is not None:
            bulleted = False
        else:  # body placeholders are bulleted by their master; other shapes only when they say so
            bulleted = (kind in ("body", "") and placeholder is not None) or depth > 0
            bulleted = bulleted or (props is not None and props.find(f"{A}buChar") is not None)
        parts.append(f"{'  ' * depth}- {text}" if bulleted else escape_line_starts(text))
    return parts


def _pptx_rows(tbl: ET.Element) -> list[list[str]]:
    """Rows of a slide table; a position covered by a merged cell (`hMerge`/`vMerge`) repeats its text."""
    rows: list[list[str]] = []
    width = len(tbl.findall(f"{A}tblGrid/{A}gridCol"))
    for tr in tbl.findall(f"{A}tr"):
        row: list[str] = []
        spread: list[str] = []  # what the positions covered by the last cell spanning columns hold
        for tc in tr.findall(f"{A}tc"):
            if tc.get("vMerge") in ("1", "true") and rows and len(row) < len(rows[-1]):
                text = rows[-1][len(row)]  # the row above holds the merged cell's spread already
            elif tc.get("hMerge") in ("1", "true") and row:
                text = spread.pop(0) if spread else row[-1]
            else:
                text = " ".join(" ".join(t.text or "" for t in tc.iter(f"{A}t")).split())
                spread = _spread(text, _int(tc.get("gridSpan"), 1), width)[1:]
            row.append(text)
        rows.append(row)
    return rows


# --- ODT ------------------------------------------------------------------------------------------------


def parse_odt(data: bytes, deadline: Deadline) -> ParsedDocument:
    with open_zip(data, "ODT") as archive:
        root = _xml(archive, "content.xml", "ODT")
    text_root = root.find(f"{OFFICE}body/{OFFICE}text")
    if text_root is None:
        raise BadDocument("the OpenDocument file has no text body")
    parts: list[str] = []
    for child in text_root:
        deadline.check("ODT body")
        parts.extend(_odt_block(child, 0))
    return from_markdown(_join_parts(parts), parser="local/odt")


def _odt_text(element: ET.Element) -> str:
    out = [element.text or ""]
    for child in element:
        if child.tag == f"{TEXT}s":
            out.append(" " * int(child.get(f"{TEXT}c", "1")))
        elif child.tag in (f"{TEXT}tab", f"{TEXT}line-break"):
            out.append(" ")
        elif child.tag != f"{TEXT}note":
            out.append(_odt_text(child))
        out.append(child.tail or "")
    return "".join(out)


def _odt_block(element: ET.Element, depth: int) -> list[str]:
    tag = element.tag
    if tag == f"{TEXT}h":
        level = min(int(element.get(f"{TEXT}outline-level", "1")), 6)
        text = " ".join(_odt_text(element).split())
        return [f"{'#' * level} {text}"] if text else []
    if tag == f"{TEXT}p":
        text = " ".join(_odt_text(element).split())
        return [escape_line_starts(text)] if text else []
    if tag == f"{TEXT}list":
        items = []
        for item in element.findall(f"{TEXT}list-item"):
            for child in item:
                if child.tag == f"{TEXT}list":
                    items.extend(_odt_block(child, depth + 1))
                else:
                    text = " ".join(_odt_text(child).split())
                    if text:
                        items.append(f"{'  ' * depth}- {text}")
        return items
    if tag == f"{TABLE}table":
        return [_table(_odt_rows(element))]
    if tag == f"{TEXT}section":
        return [part for child in element for part in _odt_block(child, depth)]
    return []


def _odt_rows(table: ET.Element) -> list[list[str]]:
    """Rows of an ODF table; a covered cell repeats the text of the cell spanning over it."""
    rows = []
    width = sum(
        min(_int(column.get(f"{TABLE}number-columns-repeated"), 1), 64)
        for column in table.iter(f"{TABLE}table-column")
    )
    spanned: dict[tuple[int, int], str] = {}  # (row, column) -> text of the cell covering it
    for r, tr in enumerate(table.iter(f"{TABLE}table-row")):
        row: list[str] = []
        for cell in tr:
            repeat = min(_int(cell.get(f"{TABLE}number-columns-repeated"), 1), 64)
            if cell.tag == f"{TABLE}covered-table-cell":
                for _ in range(repeat):
                    row.append(spanned.get((r, len(row)), ""))
            elif cell.tag == f"{TABLE}table-cell":
                text = " ".join(" ".join(_odt_text(p).split()) for p in cell.findall(f"{TEXT}p"))
                rows_spanned = min(_int(cell.get(f"{TABLE}number-rows-spanned"), 1), 64)
                columns = _spread(text, min(_int(cell.get(f"{TABLE}number-columns-spanned"), 1), 64), width)
                for dr in range(rows_spanned):
                    for dc, value in enumerate(columns):
                        spanned[(r + dr, len(row) + dc)] = value
                row.extend([text] * repeat)
        while row and not row[-1]:
            row.pop()
        rows.append(row)
    return rows
