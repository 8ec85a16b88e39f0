"""Tables on born-digital PDF pages, from PDFium's page objects and character boxes (no second PDF parser).

Two finders, run only on pages that look tabular (ruling lines, or several text lines with column gaps):

- **ruled**: the page's axis-aligned line segments (thin paths and rectangle sides) are merged and grouped
  into connected grids; a grid's rows and columns are the distinct rule positions, a cell spans where a
  rule between two grid cells is missing, and every word goes to the cell under its centre (a spanning
  cell's text sits in its top-left position). A frame with no inner rules is left to the second finder.
- **aligned text**: runs of lines whose words leave the same vertical white gaps ("rivers") become a table;
  the columns are the rivers, each word goes to the column under its centre.

All coordinates are PDF units with y up; a `Table` records its box so the layout can put it in reading
position and drop the lines it covers.
"""

import bisect
import ctypes
import itertools
import re
import statistics
from dataclasses import dataclass, field

import pypdfium2.raw as pdfium_c

_TOL = 2.0  # rule positions within this distance are one rule
_THIN = 3.0  # a path narrower than this is a line
_MAX_OBJECTS = 4000  # pages with more objects (drawings, charts) are not searched for rules
_MAX_SEGMENTS = 2000
_MAX_CELLS = 5000  # a bigger grid is a drawing (a chart, graph paper), not a table
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufeff]")
PROSE_WORDS = 5  # a borderless column with more words per cell on average holds prose


@dataclass
class Word:
    text: str
    left: float
    right: float
    bottom: float
    top: float

    @property
    def cx(self) -> float:
        return (self.left + self.right) / 2

    @property
    def cy(self) -> float:
        return (self.bottom + self.top) / 2


@dataclass
class Table:
    left: float
    right: float
    bottom: float
    top: float
    rows: list[list[str]] = field(default_factory=list)

    def contains(self, x: float, y: float, margin: float = 1.0) -> bool:
        return (
            self.left - margin <= x <= self.right + margin and self.bottom - margin <= y <= self.top + margin
        )


# --- words -----------------------------------------------------------------------------------------------


_WORD = re.compile(r"[^\s\x00-\x20\ufffd\ufffe\uffff]+")


def page_words(raw_textpage: object, ranges: list[tuple[int, int]] | None = None) -> list[Word]:
    """Words (runs of characters between spaces and line breaks) with their loose (font-height) boxes: the
    union of their first and last characters' boxes, which also holds for right-to-left and rotated text.
    `ranges`: only the characters in these (first, last) index ranges (default: all)."""
    count = pdfium_c.FPDFText_CountChars(raw_textpage)
    if count <= 0:
        return []
    buffer = ctypes.create_string_buffer((count + 1) * 2)
    written = pdfium_c.FPDFText_GetText(
        raw_textpage, 0, count, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort))
    )
    text = buffer.raw[: max(written - 1, 0) * 2].decode("utf-16-le", errors="replace")
    if len(text) != count:  # characters outside the BMP: one index each, two UTF-16 units
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(raw_textpage, i)) for i in range(count))
    rect = pdfium_c.FS_RECTF()
    words: list[Word] = []
    for first, last in sorted(set(ranges or [(0, count - 1)])):
        for match in _WORD.finditer(text, first, last + 1):
            a, b = match.start(), match.end() - 1
            if not pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, a, rect):
                continue
            left, right, bottom, top = rect.left, rect.right, rect.bottom, rect.top
            if b > a and pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, b, rect):
                left, right = min(left, rect.left), max(right, rect.right)
                bottom, top = min(bottom, rect.bottom), max(top, rect.top)
            word = Word(match.group(), left, right, bottom, top)
            width, height = right - left, top - bottom
            if b > a and max(width, height) > 1.2 * (b - a + 1) * min(width, height):
                words += _split_word(raw_textpage, text, a, b)  # gaps inside: look at every character
            else:
                words.append(word)
    return words


def _split_word(raw_textpage: object, text: str, first: int, last: int) -> list[Word]:
    """The characters first..last cut where one does not continue the previous one (a gap, a new line)."""
    rect = pdfium_c.FS_RECTF()
    words: list[Word] = []
    box: list[float] = []
    previous: list[float] = []
    start = first
    for index in range(first, last + 2):
        if index <= last:
            if not pdfium_c.FPDFText_GetLooseCharBox(raw_textpage, index, rect):
                continue
            current = [rect.left, rect.right, rect.bottom, rect.top]
        if box and (index > last or not _joins(previous, current)):
            words.append(Word(text[start:index], *box))
            box = []
        if index > last:
            break
        if not box:
            box, start = list(current), index
        else:
            box = [
                min(box[0], current[0]),
                max(box[1], current[1]),
                min(box[2], current[2]),
                max(box[3], current[3]),
            ]
        previous = current
    return words


def _joins(a: list[float], b: list[float]) -> bool:
    """Whether character box `b` continues the word whose last character box is `a`."""
    height = min(a[3] - a[2], b[3] - b[2])
    width = min(a[1] - a[0], b[1] - b[0])
    same_line = min(a[3], b[3]) - max(a[2], b[2]) > 0.5 * height
    if same_line:
        gap = max(b[0] - a[1], a[0] - b[1])  # right-to-left scripts run leftwards
        return gap < 0.15 * max(height, 1.0)
    same_column = min(a[1], b[1]) - max(a[0], b[0]) > 0.5 * width
    vertical_gap = max(b[2] - a[3], a[2] - b[3])
    return same_column and width > 0 and vertical_gap < 0.15 * max(width, 1.0)


# --- rules -----------------------------------------------------------------------------------------------


@dataclass
class _Rule:
    pos: float  # y of a horizontal rule, x of a vertical one
    start: float
    end: float


def page_rules(raw_page: object) -> tuple[list[_Rule], list[_Rule]]:
    """(horizontal, vertical) axis-aligned rules drawn on the page, merged; empty when there are too many
    objects to look at."""
    count = pdfium_c.FPDFPage_CountObjects(raw_page)
    if count > _MAX_OBJECTS:
        return [], []
    horizontal: list[_Rule] = []
    vertical: list[_Rule] = []
    objects = [pdfium_c.FPDFPage_GetObject(raw_page, i) for i in range(count)]
    while objects:
        obj = objects.pop()
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            n = pdfium_c.FPDFFormObj_CountObjects(obj)
            if 0 < n <= _MAX_OBJECTS:
                objects.extend(pdfium_c.FPDFFormObj_GetObject(obj, i) for i in range(n))
            continue
        if kind != pdfium_c.FPDF_PAGEOBJ_PATH:
            continue
        _path_rules(obj, horizontal, vertical)
    return _merge(horizontal), _merge(vertical)


def _path_rules(obj: object, horizontal: list[_Rule], vertical: list[_Rule]) -> None:
    bounds = [ctypes.c_float() for _ in range(4)]
    if not pdfium_c.FPDFPageObj_GetBounds(obj, *bounds):
        return
    left, bottom, right, top = (value.value for value in bounds)
    width, height = right - left, top - bottom
    if width <= _THIN and height > _THIN:
        vertical.append(_Rule((left + right) / 2, bottom, top))
        return
    if height <= _THIN and width > _THIN:
        horizontal.append(_Rule((bottom + top) / 2, left, right))
        return
    if width <= _THIN or height <= _THIN:
        return
    n = pdfium_c.FPDFPath_CountSegments(obj)
    if n <= 0 or n > _MAX_SEGMENTS:
        return
    if n <= 5:  # one rectangle: its four sides
        horizontal += [_Rule(bottom, left, right), _Rule(top, left, right)]
        vertical += [_Rule(left, bottom, top), _Rule(right, bottom, top)]
        return
    matrix = pdfium_c.FS_MATRIX()
    if not pdfium_c.FPDFPageObj_GetMatrix(obj, matrix):
        return
    x = ctypes.c_float()
    y = ctypes.c_float()
    start = previous = None
    for i in range(n):
        segment = pdfium_c.FPDFPath_GetPathSegment(obj, i)
        if not pdfium_c.FPDFPathSegment_GetPoint(segment, x, y):
            continue
        point = (
            matrix.a * x.value + matrix.c * y.value + matrix.e,
            matrix.b * x.value + matrix.d * y.value + matrix.f,
        )
        kind = pdfium_c.FPDFPathSegment_GetType(segment)
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
            start = previous = point
            continue
        if kind == pdfium_c.FPDF_SEGMENT_LINETO and previous is not None:
            _add_segment(previous, point, horizontal, vertical)
            if pdfium_c.FPDFPathSegment_GetClose(segment) and start is not None:
                _add_segment(point, start, horizontal, vertical)
        previous = point


def _add_segment(a: tuple[float, float], b: tuple[float, float], horizontal: list, vertical: list) -> None:
    (x0, y0), (x1, y1) = a, b
    if abs(y1 - y0) <= 1.0 and abs(x1 - x0) > _THIN:
        horizontal.append(_Rule((y0 + y1) / 2, min(x0, x1), max(x0, x1)))
    elif abs(x1 - x0) <= 1.0 and abs(y1 - y0) > _THIN:
        vertical.append(_Rule((x0 + x1) / 2, min(y0, y1), max(y0, y1)))


def _merge(rules: list[_Rule]) -> list[_Rule]:
    """Collinear rules that touch or overlap become one."""
    merged: list[_Rule] = []
    for rule in sorted(rules, key=lambda r: (round(r.pos / _TOL), r.start)):
        last = merged[-1] if merged else None
        if last and abs(last.pos - rule.pos) <= _TOL and rule.start <= last.end + _TOL:
            last.end = max(last.end, rule.end)
        else:
            merged.append(_Rule(rule.pos, rule.start, rule.end))
    return merged


# --- ruled tables ----------------------------------------------------------------------------------------


@dataclass
class Grid:
    """Rules that cross one another: a ruled table's skeleton."""

    horizontal: list[_Rule]
    vertical: list[_Rule]
    ys: list[float]  # row boundaries, top to bottom
    xs: list[float]  # column boundaries, left to right

    def overlaps(self, left: float, right: float, bottom: float, top: float) -> bool:
        return left < self.xs[-1] and right > self.xs[0] and bottom < self.ys[0] and top > self.ys[-1]


def rule_grids(horizontal: list[_Rule], vertical: list[_Rule]) -> list[Grid]:
    """Connected sets of crossing rules that make at least two cells (a lone frame is not a grid)."""
    if len(horizontal) < 2 or len(vertical) < 2:
        return []
    rules = [("h", r) for r in horizontal] + [("v", r) for r in vertical]
    parent = list(range(len(rules)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    offset = len(horizontal)
    for i, h in enumerate(horizontal):
        for j, v in enumerate(vertical):
            if _cross(h, v):
                parent[find(i)] = find(offset + j)
    groups: dict[int, list[tuple[str, _Rule]]] = {}
    for i, rule in enumerate(rules):
        groups.setdefault(find(i), []).append(rule)
    grids = []
    for group in groups.values():
        hs = [r for k, r in group if k == "h"]
        vs = [r for k, r in group if k == "v"]
        if len(hs) < 2 or len(vs) < 2:
            continue
        # the grid's outer edges are its outermost rules, drawn or not (many tables have no side borders)
        ys = _positions([r.pos for r in hs] + [min(r.start for r in vs), max(r.end for r in vs)])[::-1]
        xs = _positions([r.pos for r in vs] + [min(r.start for r in hs), max(r.end for r in hs)])
        if (len(ys) - 1) * (len(xs) - 1) > 1:
            grids.append(Grid(hs, vs, ys, xs))
    return grids


def ruled_tables(horizontal: list[_Rule], vertical: list[_Rule], words: list[Word]) -> list[Table]:
    """Grids of crossing rules with text inside, as tables."""
    return [t for grid in rule_grids(horizontal, vertical) if (t := grid_table(grid, words))]


def _cross(h: _Rule, v: _Rule) -> bool:
    return h.start - _TOL <= v.pos <= h.end + _TOL and v.start - _TOL <= h.pos <= v.end + _TOL


def _positions(values: list[float]) -> list[float]:
    out: list[float] = []
    for value in sorted(values):
        if out and value - out[-1] <= _TOL:
            continue
        out.append(value)
    return out


def grid_table(grid: Grid, words: list[Word]) -> Table | None:
    """The grid's cells filled with the words under their centres; None when it holds too little text."""
    hs, vs, ys, xs = grid.horizontal, grid.vertical, grid.ys, grid.xs
    table = Table(xs[0], xs[-1], ys[-1], ys[0])
    inside = [w for w in words if table.contains(w.cx, w.cy, -0.5)]
    if not inside:
        return None
    n_rows, n_cols = len(ys) - 1, len(xs) - 1
    if n_rows * n_cols > _MAX_CELLS:
        return None
    v_at = [[r for r in vs if abs(r.pos - x) <= _TOL] for x in xs]  # the rules on each column boundary
    h_at = [[r for r in hs if abs(r.pos - y) <= _TOL] for y in ys]

    def v_rule_at(k: int, y0: float, y1: float) -> bool:
        mid = (y0 + y1) / 2
        return any(r.start - _TOL <= mid <= r.end + _TOL for r in v_at[k])

    def h_rule_at(k: int, x0: float, x1: float) -> bool:
        mid = (x0 + x1) / 2
        return any(r.start - _TOL <= mid <= r.end + _TOL for r in h_at[k])

    owner = {(i, j): (i, j) for i in range(n_rows) for j in range(n_cols)}

    def root(cell: tuple[int, int]) -> tuple[int, int]:
        while owner[cell] != cell:
            cell = owner[cell]
        return cell

    for i in range(n_rows):
        for j in range(n_cols):
            if j + 1 < n_cols and not v_rule_at(j + 1, ys[i + 1], ys[i]):
                a, b = root((i, j)), root((i, j + 1))
                if a != b:
                    owner[max(a, b)] = min(a, b)
            if i + 1 < n_rows and not h_rule_at(i + 1, xs[j], xs[j + 1]):
                a, b = root((i, j)), root((i + 1, j))
                if a != b:
                    owner[max(a, b)] = min(a, b)
    texts: dict[tuple[int, int], list[Word]] = {}
    downward = [-y for y in ys]
    for word in inside:
        i = min(max(bisect.bisect_right(downward, -word.cy) - 1, 0), n_rows - 1)
        j = min(max(bisect.bisect_right(xs, word.cx) - 1, 0), n_cols - 1)
        texts.setdefault(root((i, j)), []).append(word)
    rows = [[_cell_text(texts.get((i, j), [])) for j in range(n_cols)] for i in range(n_rows)]
    rows, columns = _drop_empty(rows)
    multi = sum(1 for row in rows if sum(1 for cell in row if cell) >= 2)
    if columns < 2 or multi < 2 or multi <= len(rows) / 2:
        return None  # a box around text (most of its rows one spanning cell), not a table
    table.rows = _reading_columns(rows)
    return table


def _cell_text(words: list[Word]) -> str:
    """A cell's words in reading order: lines top to bottom, words left to right (right to left in
    Arabic or Hebrew script)."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: -w.top):
        if lines and _same_line(lines[-1][0], word):
            lines[-1].append(word)
        else:
            lines.append([word])
    rtl = is_rtl(w.text for w in words)
    if words and all(w.top - w.bottom > 2 * (w.right - w.left) for w in words):  # text turned upwards
        return " ".join(w.text for w in sorted(words, key=lambda w: (round(w.left), w.bottom)))
    return " ".join(w.text for line in lines for w in sorted(line, key=lambda w: -w.right if rtl else w.left))


def is_rtl(texts) -> bool:
    """Whether most letters of the texts are in a right-to-left script (Hebrew, Arabic, Syriac, Thaana)."""
    texts = list(texts)
    if not any(_RTL.search(text) for text in texts):
        return False
    rtl = letters = 0
    for text in texts:
        for char in text:
            if char.isalpha():
                letters += 1
                rtl += "\u0590" <= char <= "\u08ff" or "\ufb1d" <= char <= "\ufeff"
    return letters > 0 and rtl > letters / 2


def _reading_columns(rows: list[list[str]]) -> list[list[str]]:
    """Columns right to left for a table in a right-to-left script."""
    return [row[::-1] for row in rows] if is_rtl(cell for row in rows for cell in row) else rows


def _same_line(a: Word, b: Word) -> bool:
    overlap = min(a.top, b.top) - max(a.bottom, b.bottom)
    return overlap > 0.5 * min(a.top - a.bottom, b.top - b.bottom)


def _drop_empty(rows: list[list[str]]) -> tuple[list[list[str]], int]:
    rows = [row for row in rows if any(row)]
    if not rows:
        return [], 0
    keep = [j for j in range(len(rows[0])) if any(row[j] for row in rows)]
    return [[row[j] for j in keep] for row in rows], len(keep)


# --- aligned text tables ---------------------------------------------------------------------------------


def text_rows(words: list[Word]) -> list[list[Word]]:
    """Words grouped into visual rows, top to bottom, each left to right."""
    rows: list[list[Word]] = []
    for word in sorted(words, key=lambda w: -w.cy):
        if rows and _same_line(rows[-1][0], word):
            rows[-1].append(word)
        else:
            rows.append([word])
    return [sorted(row, key=lambda w: w.left) for row in rows]


def _segments(row: list[Word], gap: float) -> list[list[Word]]:
    """A row cut where the space between two words is wider than `gap` times the text height."""
    out: list[list[Word]] = [[row[0]]]
    for previous, word in itertools.pairwise(row):
        height = min(previous.top - previous.bottom, word.top - word.bottom)
        if word.left - previous.right > gap * height:
            out.append([word])
        else:
            out[-1].append(word)
    return out


_LEADER = re.compile(r"^[.…·_]{3,}$|^(.*?)[.…·]{3,}$")  # dot leaders joining a label to its values
_MAX_BRIDGE = 3  # at most this many one-cell rows (section labels, wrapped labels) inside a table


def _drop_leaders(words: list[Word]) -> list[Word]:
    """Words without their dot leaders ("Total ......" keeps "Total"): leaders fill a column gap."""
    out = []
    for word in words:
        match = _LEADER.match(word.text)
        if not match:
            out.append(word)
        elif match.group(1):
            keep = match.group(1)
            width = (word.right - word.left) * len(keep) / len(word.text)
            out.append(Word(keep, word.left, word.left + width, word.bottom, word.top))
    return out


def aligned_tables(words: list[Word], min_rows: int = 3) -> list[Table]:
    """Runs of rows that share two or more column gaps, as tables. A run may hold a few one-cell rows
    (section labels, label lines that wrapped) between rows with several cells."""
    rows = text_rows(_drop_leaders(words))
    multi = [len(_segments(row, 1.0)) >= 2 for row in rows]
    tables: list[Table] = []
    index = 0
    while index < len(rows):
        if not multi[index]:
            index += 1
            continue
        end = index + 1  # rows[index:end] is the run; it ends on a row with several cells
        probe, bridged = end, 0
        while probe < len(rows) and _close(rows[probe - 1], rows[probe]):
            if multi[probe] and (not bridged or _same_columns(rows[index:end], rows[probe])):
                end, bridged = probe + 1, 0
            elif bridged < _MAX_BRIDGE and _label_row(rows[probe], rows[index:end]):
                bridged += 1
            else:
                break
            probe += 1
        if sum(multi[index:end]) >= min_rows:
            table = _aligned_table(rows[index:end])
            if table:
                tables.append(table)
        index = end
    return tables


def _label_row(row: list[Word], table: list[list[Word]]) -> bool:
    """Whether a one-cell row may sit inside the table: short, and not wider than the table's first
    column reaches (a section label or a wrapped label, not a sentence across the page)."""
    if len(row) > PROSE_WORDS:
        return False
    left = min(w.left for r in table for w in r)
    right = max(w.right for r in table for w in r)
    return row[-1].right <= left + 0.5 * (right - left)


def _same_columns(table: list[list[Word]], below: list[Word]) -> bool:
    """Whether most cells of `below` past its first sit over a cell of the table's rows (past their first):
    rows of one table across a label row, not the next table under a short caption."""
    spans = [(s[0].left, s[-1].right) for row in table[-6:] for s in _segments(row, 1.0)[1:]]
    cells = _segments(below, 1.0)[1:]
    matched = sum(1 for s in cells if any(s[0].left < b and s[-1].right > a for a, b in spans))
    return matched >= max(1, len(cells) / 2)


def _close(above: list[Word], below: list[Word]) -> bool:
    height = statistics.median(w.top - w.bottom for w in above + below)
    return min(w.bottom for w in above) - max(w.top for w in below) < 1.6 * height


def _aligned_table(rows: list[list[Word]]) -> Table | None:
    """Columns are x ranges that words of (nearly) every row leave empty."""
    left = min(w.left for row in rows for w in row)
    right = max(w.right for row in rows for w in row)
    step = 1.0
    n = int((right - left) / step) + 1
    cover = [0] * n
    for row in rows:
        seen = [False] * n
        for segment in _segments(row, 0.6):
            a = int((segment[0].left - left) / step)
            b = int((segment[-1].right - left) / step)
            for k in range(max(a, 0), min(b + 1, n)):
                seen[k] = True
        for k in range(n):
            cover[k] += seen[k]
    allowed = len(rows) // 10
    height = statistics.median(w.top - w.bottom for row in rows for w in row)
    gaps: list[tuple[float, float]] = []
    k = 0
    while k < n:
        if cover[k] <= allowed:
            start = k
            while k < n and cover[k] <= allowed:
                k += 1
            if (k - start) * step >= 0.5 * height and start > 0 and k < n:
                gaps.append((left + start * step, left + k * step))
        else:
            k += 1
    if not gaps:
        return None
    bounds = [left, *[(a + b) / 2 for a, b in gaps], right]
    n_cols = len(bounds) - 1
    grid: list[list[list[Word]]] = [[[] for _ in range(n_cols)] for _ in rows]
    for r, row in enumerate(rows):
        for segment in _segments(row, 0.6):
            columns = [_column(bounds, word.cx) for word in segment]
            if columns[0] != columns[-1] and any(ch.isalpha() for w in segment for ch in w.text):
                columns = [columns[0]] * len(segment)  # a heading over several columns: its first one
            for word, c in zip(segment, columns, strict=True):
                grid[r][c].append(word)
    filled = [sum(1 for cell in row if cell) for row in grid]
    if sum(1 for f in filled if f >= 2) < max(2, 0.6 * len(rows)):
        return None  # mostly one-cell rows: prose, not a table
    for c in range(n_cols):
        cells = [len(row[c]) for row in grid if row[c]]
        if cells and sum(cells) / len(cells) > PROSE_WORDS:
            return None  # a column of sentences: text columns side by side, not a table
    grid = _join_wrapped(grid, rows)
    table_rows, _ = _drop_empty([[_cell_text(cell) for cell in row] for row in grid])
    split = _side_by_side(gaps, height)
    if split:  # one table continued in a second column: its rows follow on
        table_rows = [row[:split] for row in table_rows] + [
            row[split:] for row in table_rows if any(row[split:])
        ]
    bottom = min(w.bottom for w in rows[-1])
    top = max(w.top for w in rows[0])
    return Table(left, right, bottom, top, _reading_columns(table_rows))


def _column(bounds: list[float], x: float) -> int:
    return min(max(bisect.bisect_right(bounds, x) - 1, 0), len(bounds) - 2)


def _join_wrapped(grid: list[list[list[Word]]], rows: list[list[Word]]) -> list[list[list[Word]]]:
    """A row that only continues the first column of the row above (the rest of a label that wrapped)
    joins that row: it sits closer under it than rows sit under one another, and no further left."""
    gaps = [min(w.bottom for w in a) - max(w.top for w in b) for a, b in itertools.pairwise(rows)]
    if len(gaps) < 2:
        return grid
    usual = statistics.median(gaps)
    out = [grid[0]]
    for r in range(1, len(grid)):
        row, above = grid[r], out[-1]
        only_first = bool(row[0]) and not any(row[1:])
        wrapped = (
            only_first
            and sum(1 for cell in above if cell) >= 2
            and bool(above[0])
            and gaps[r - 1] < 0.6 * usual
            and min(w.left for w in row[0]) >= min(w.left for w in above[0]) - 1.0
        )
        if wrapped:
            out[-1] = [above[0] + row[0], *above[1:]]
        else:
            out.append(row)
    return out


def _side_by_side(gaps: list[tuple[float, float]], height: float) -> int | None:
    """The number of columns of the left half when the columns are two tables of the same width side by
    side (one gap far wider than the others right in the middle of the column list), else None."""
    if len(gaps) < 3 or len(gaps) % 2 == 0:
        return None
    widths = [b - a for a, b in gaps]
    middle = len(gaps) // 2
    others = widths[:middle] + widths[middle + 1 :]
    if widths[middle] >= max(3 * max(others), 4 * height):
        return middle + 1
    return None
