"""OCR with RapidOCR (PP-OCRv4 ONNX models bundled in the `rapidocr-onnxruntime` wheel: runs offline).

`ocr_lines` returns text boxes in pixels; spaces the recogniser drops between words are put back from the
character boxes. `parse_image` OCRs PNG, JPEG, TIFF (every frame a page), GIF, WebP and BMP images.
"""

import io
import statistics
import threading
from functools import lru_cache

from docflow.backends.parse.guard import Deadline
from docflow.errors import BadDocument, DocumentTooLarge, MissingExtra
from docflow.models import ParsedDocument

MAX_PIXELS = 80_000_000  # larger images are refused (decompression bombs)
MAX_SIDE = 4000  # OCR input is scaled down to this many pixels on the long side
SPACE_GAP = 0.4  # a gap this many typical character widths wider than the usual one is a space
RESPACE_MIN_CHARS = 8  # shorter lines without a space are taken as one word
_LOCK = threading.Lock()  # one OCR at a time per process: the ONNX sessions use every core already


@lru_cache(maxsize=1)
def _engine():
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise MissingExtra("rapidocr-onnxruntime", "ocr", "OCR of scans and images") from exc
    return RapidOCR()


def ocr_lines(image) -> list[tuple[str, float, float, float, float]]:
    """(text, left, top, right, bottom) per detected text line, pixels with y down, in reading order."""
    import numpy as np

    image = image.convert("RGB")
    with _LOCK:
        result, _ = _engine()(np.asarray(image), return_word_box=True)
    lines = []
    for item in result or []:
        box, text, _score = item[0], item[1], item[2]
        if len(item) > 4 and item[4] and " " not in text.strip() and len(text) > RESPACE_MIN_CHARS:
            # the recognizer drops the spaces of some lines (large type): put them back from the character
            # boxes; a line that has spaces keeps the recognizer's, which are better than box gaps
            text = _respace(item[3], item[4])
        xs = [point[0] for point in box]
        ys = [point[1] for point in box]
        text = " ".join(text.split())
        if text:
            lines.append((text, min(xs), min(ys), max(xs), max(ys)))
    return _reading_order(lines)


def _reading_order(lines: list[tuple[str, float, float, float, float]]):
    """Top to bottom; boxes whose middle falls within a row's first box are that row, left to right."""
    rows: list[list[tuple[str, float, float, float, float]]] = []
    for line in sorted(lines, key=lambda line: (line[2] + line[4]) / 2):
        middle = (line[2] + line[4]) / 2
        if rows and rows[-1][0][2] <= middle <= rows[-1][0][4]:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda line: line[1])]


def _respace(boxes: list, chars: list[str]) -> str:
    """Characters joined with a space wherever the gap to the previous character is wide."""
    if len(boxes) != len(chars):
        return "".join(chars)
    widths = [max(p[0] for p in box) - min(p[0] for p in box) for box, c in zip(boxes, chars, strict=True)]
    typical = statistics.median(w for w, c in zip(widths, chars, strict=True) if c.strip()) if widths else 0
    lefts = [min(p[0] for p in box) for box in boxes]
    rights = [max(p[0] for p in box) for box in boxes]
    gaps = [
        lefts[i] - rights[i - 1] for i in range(1, len(boxes)) if chars[i].strip() and chars[i - 1].strip()
    ]
    usual_gap = max(0.0, statistics.median(gaps)) if gaps else 0.0
    out: list[str] = []
    previous_right: float | None = None
    for box, char in zip(boxes, chars, strict=True):
        left = min(p[0] for p in box)
        if (
            previous_right is not None
            and char.strip()
            and out
            and out[-1] != " "
            and left - previous_right > usual_gap + SPACE_GAP * typical
        ):
            out.append(" ")
        out.append(char)
        previous_right = max(p[0] for p in box)
    return "".join(out)


def open_image(data: bytes):
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise MissingExtra("pillow", "ocr", "images") from exc
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        image.size  # noqa: B018 - the header is read lazily
    except Image.DecompressionBombError as exc:
        raise DocumentTooLarge(f"the image is too large ({exc})") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadDocument(f"the image is corrupt or truncated ({exc})") from exc
    if image.width * image.height > MAX_PIXELS:
        raise DocumentTooLarge(f"the image has {image.width}x{image.height} pixels, over {MAX_PIXELS:,}")
    return image


def parse_image(data: bytes, max_pages: int, deadline: Deadline) -> ParsedDocument:
    from docflow.backends.parse.pdf import _Line, _Page, layout_document

    image = open_image(data)
    frames = getattr(image, "n_frames", 1)
    if frames > max_pages:
        raise DocumentTooLarge(f"the image has {frames:,} pages (frames), over the limit of {max_pages:,}")
    pages = []
    for number in range(frames):
        deadline.check(f"OCR of page {number + 1}")
        try:
            image.seek(number)
            frame = image.convert("RGB")
        except (OSError, ValueError, EOFError) as exc:
            raise BadDocument(f"the image is corrupt or truncated (frame {number + 1}: {exc})") from exc
        scale = min(1.0, MAX_SIDE / max(frame.size))
        if scale < 1.0:
            frame = frame.resize((int(frame.width * scale), int(frame.height * scale)))
        height = float(frame.height)
        lines = [
            _Line(
                text,
                left,
                right,
                height - top,
                height - bottom,
                (bottom - top) * 0.8,
                cells=[(left, right, text)],
            )
            for text, left, top, right, bottom in ocr_lines(frame)
        ]
        pages.append(
            _Page(number + 1, lines, sum(len(line.text) for line in lines), 0, frame.width, height, ocr=True)
        )
    document = layout_document(pages, "local/rapidocr")
    document.warnings = [w for w in document.warnings if "OCRed" not in w]
    if not document.text.strip():
        document.warnings.append("no text found in the image")
    return document
