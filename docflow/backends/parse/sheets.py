"""Spreadsheets: XLSX (openpyxl) and XLS (xlrd); each sheet a page with its used range as a pipe table.

A merged XLSX cell's value is repeated in every position it covers, as in the office formats' tables (a pipe
table cannot express a span; an empty position would read as a missing value), except a merge spanning the
sheet's whole width (a title or note row), which keeps its value once. Empty rows and columns are dropped.
Very large sheets are cut at `MAX_CELLS` with a warning.
"""

import datetime as dt

from docflow.backends.parse.guard import Deadline, open_zip
from docflow.backends.parse.markdown import from_markdown, pipe_table
from docflow.errors import BadDocument, MissingExtra
from docflow.models import ParsedDocument

MAX_CELLS = 200_000


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    return str(value)


def _trim(rows: list[list[str]]) -> list[list[str]]:
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    width = max((i + 1 for row in rows for i, cell in enumerate(row) if cell.strip()), default=0)
    used = [c for c in range(width) if any(c < len(row) and row[c].strip() for row in rows)]
    return [[row[c] if c < len(row) else "" for c in used] for row in rows]


def _sheets_markdown(sheets: list[tuple[str, list[list[str]]]], parser: str, warnings: list[str]):
    parts = []
    for number, (name, rows) in enumerate(sheets, start=1):
        parts.append(f"<!-- page {number} -->\n\n## {name}")
        rows = _trim(rows)
        if rows:
            parts.append(pipe_table(rows))
    return from_markdown("\n\n".join(parts) + "\n", parser=parser, warnings=warnings, pages=len(sheets))


def parse_xlsx(data: bytes, deadline: Deadline) -> ParsedDocument:
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover
        raise MissingExtra("openpyxl", "parse", "XLSX spreadsheets") from exc
    open_zip(data, "XLSX").close()  # zip-bomb and corruption checks before openpyxl inflates anything
    import io

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, ValueError, InvalidFileException...
        raise BadDocument(f"the XLSX file is corrupt ({type(exc).__name__}: {exc})") from exc
    sheets, warnings = [], []
    for sheet in book.worksheets:
        deadline.check(f"sheet {sheet.title}")
        covered = _covered(sheet)
        rows, cells = [], 0
        for row in sheet.iter_rows():
            cells += len(row)
            if cells > MAX_CELLS:
                warnings.append(f"sheet {sheet.title!r} cut at {MAX_CELLS:,} cells")
                break
            rows.append([covered.get((c.row, c.column), _show(c.value)) for c in row])
        sheets.append((sheet.title, rows))
    return _sheets_markdown(sheets, "local/xlsx", warnings)


def _covered(sheet) -> dict[tuple[int, int], str]:
    """(row, column) -> what a position covered by a merged cell shows: the merged value, or nothing when
    the merge spans every used column of the sheet."""
    covered: dict[tuple[int, int], str] = {}
    for merged in sheet.merged_cells.ranges:
        full = merged.min_col <= sheet.min_column and merged.max_col >= sheet.max_column > sheet.min_column
        value = _show(sheet.cell(merged.min_row, merged.min_col).value)
        for r in range(merged.min_row, merged.max_row + 1):
            for c in range(merged.min_col, merged.max_col + 1):
                if (r, c) != (merged.min_row, merged.min_col):
                    covered[r, c] = "" if full and c != merged.min_col else value
    return covered


def parse_xls(data: bytes, deadline: Deadline) -> ParsedDocument:
    try:
        import xlrd
    except ImportError as exc:  # pragma: no cover
        raise MissingExtra("xlrd", "parse", "XLS spreadsheets") from exc
    try:
        book = xlrd.open_workbook(file_contents=data, formatting_info=False, on_demand=True)
    except Exception as exc:  # xlrd.XLRDError, CompDocError, struct errors
        raise BadDocument(f"the XLS file is corrupt ({type(exc).__name__}: {exc})") from exc
    sheets, warnings = [], []
    for index in range(book.nsheets):
        sheet = book.sheet_by_index(index)
        deadline.check(f"sheet {sheet.name}")
        if sheet.nrows * sheet.ncols > MAX_CELLS:
            warnings.append(f"sheet {sheet.name!r} cut at {MAX_CELLS:,} cells")
        limit = max(1, MAX_CELLS // max(1, sheet.ncols))
        rows = []
        for r in range(min(sheet.nrows, limit)):
            row = []
            for c in range(sheet.ncols):
                cell = sheet.cell(r, c)
                if cell.ctype == xlrd.XL_CELL_DATE:
                    row.append(_show(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)))
                else:
                    row.append(_show(cell.value))
            rows.append(row)
        sheets.append((sheet.name, rows))
    return _sheets_markdown(sheets, "local/xls", warnings)
