"""OCR with RapidOCR 3 (PP-OCRv6 ONNX models bundled in the `rapidocr` wheel: runs offline).

`ocr_lines` returns text boxes in pixels (`ocr_lines_scored` adds the recogniser's confidence); spaces the
recogniser drops between words are put back from the character boxes. Small pages (low-resolution faxes) are
enlarged and tilted pages levelled first: on a photographed or faxed page a few degrees off, a value's box
sits a row below its label's and the rows interleave. Boxes are always in the pixels of the image given.
`parse_image` OCRs PNG, JPEG, TIFF (every frame a page), GIF, WebP and BMP images.
"""

import io
import statistics
import threading
import unicodedata
from functools import lru_cache

from docflow import metering
from docflow.backends.parse.guard import Deadline
from docflow.backends.parse.layout import Line, Page, layout_document
from docflow.errors import BadDocument, DocumentTooLarge, MissingExtra
from docflow.models import ParsedDocument

MAX_PIXELS = 80_000_000  # larger images are refused (decompression bombs)
MAX_SIDE = 4000  # OCR input is scaled down to this many pixels on the long side
SPACE_GAP = 0.4  # a gap this many typical character widths wider than the usual one is a space
RESPACE_MIN_CHARS = 8  # shorter lines without a space are taken as one word
MAX_SKEW = 15.0  # degrees: steeper pages are left as they are (the recogniser's own angle handling)
MIN_SKEW = 0.4  # degrees: a smaller tilt is not worth a resampling
SKEW_SIDE = 800  # the skew is estimated on a copy this many pixels on the long side
DESKEW = True  # level tilted pages before OCR
MIN_SIDE = 1600  # pages smaller than this on the long side (low-resolution faxes, thumbnails) are enlarged
MAX_ENLARGE = 3.0
_LOCK = threading.Lock()  # one OCR at a time per process: the ONNX sessions use every core already


@lru_cache(maxsize=1)
def _engine():
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise MissingExtra("rapidocr", "ocr", "OCR of scans and images") from exc
    # an image without text is reported by docflow in the parse warnings, not once per page in the logs
    return RapidOCR(params={"Global.log_level": "error"})


def ocr_lines(image) -> list[tuple[str, float, float, float, float]]:
    """(text, left, top, right, bottom) per detected text line, pixels with y down, in reading order."""
    return [line[:5] for line in ocr_lines_scored(image)]


def ocr_lines_scored(image) -> list[tuple[str, float, float, float, float, float]]:
    """`ocr_lines` with the recogniser's confidence (0-1) of each line last. A tilted page is read in the
    order of its levelled rows; its boxes are the rectangles around the lines on the page as given."""
    import numpy as np

    image = image.convert("RGB")
    size = image.size
    image = upscale(image)
    enlarged = image.size
    image, angle = deskew(image) if DESKEW else (image, 0.0)
    with _LOCK:
        result = _engine()(np.asarray(image), return_word_box=True)
    lines = []
    boxes = result.boxes.tolist() if result.boxes is not None else []
    words = result.word_results or [()] * len(boxes)
    for box, text, score, parts in zip(boxes, result.txts or (), result.scores or (), words, strict=False):
        text = unicodedata.normalize("NFKC", text)  # the recogniser writes some ASCII as full-width forms
        if parts and " " not in text.strip() and len(text) > RESPACE_MIN_CHARS:
            # the recognizer drops the spaces of some lines (large type): put them back from the character
            # boxes; a line that has spaces keeps the recognizer's, which are better than box gaps
            pieces = [unicodedata.normalize("NFKC", part[0]) for part in parts]
            if all(len(piece) == 1 for piece in pieces):
                text = _respace([part[2] for part in parts], pieces)
        xs = [point[0] for point in box]
        ys = [point[1] for point in box]
        text = " ".join(text.split())
        if text:
            lines.append((text, min(xs), min(ys), max(xs), max(ys), round(float(score), 4)))
    ordered = _reading_order(lines)  # on the levelled page, where a row's boxes line up
    if not angle and enlarged == size:
        return ordered
    sx, sy = size[0] / enlarged[0], size[1] / enlarged[1]
    out = []
    for text, left, top, right, bottom, score in ordered:
        xs, ys = [left, right], [top, bottom]
        if angle:
            xs, ys = _unrotate(
                [left, right, right, left], [top, top, bottom, bottom], angle, image.size, enlarged
            )
        left, right = max(0.0, min(xs) * sx), min(float(size[0]), max(xs) * sx)
        top, bottom = max(0.0, min(ys) * sy), min(float(size[1]), max(ys) * sy)
        out.append((text, left, top, right, bottom, score))
    return out


def upscale(image):
    """A page smaller than MIN_SIDE on its long side enlarged to it (at most MAX_ENLARGE times): the detector
    misses and the recogniser misreads type only a few pixels high."""
    from PIL import Image

    factor = min(MAX_ENLARGE, MIN_SIDE / max(image.size))
    if factor <= 1.1:
        return image
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.LANCZOS)


def deskew(image):
    """(the page rotated so its text rows run level, the angle it was rotated by in degrees). The rotated page
    is enlarged to keep its corners."""
    image = image.convert("RGB")
    angle = skew_angle(image)
    if not angle:
        return image, 0.0
    return image.rotate(angle, resample=_bicubic(), expand=True, fillcolor=_background(image)), angle


def skew_angle(image) -> float:
    """Degrees to rotate the page by (counter-clockwise) so its text rows run level; 0.0 when it is level.

    The angle whose rotation gives the sharpest row profile (dark pixels summed per row: text rows and the
    gaps between them), searched coarse then fine over +-MAX_SKEW degrees on a small binarised copy."""
    import numpy as np
    from PIL import Image

    grey = image.convert("L")
    scale = SKEW_SIDE / max(grey.size)
    if scale < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))))
    pixels = np.asarray(grey, dtype=np.float32)
    if pixels.size == 0 or pixels.std() < 1:
        return 0.0
    ink = Image.fromarray(((pixels < _otsu(pixels)) * 255).astype(np.uint8))

    def sharpness(angle: float) -> float:
        rows = np.asarray(ink.rotate(angle, resample=Image.Resampling.NEAREST), dtype=np.float32).sum(axis=1)
        return float(np.square(np.diff(rows)).sum())

    coarse = max(np.arange(-MAX_SKEW, MAX_SKEW + 0.01, 1.0), key=sharpness)
    fine = max(np.arange(coarse - 1.0, coarse + 1.01, 0.2), key=sharpness)
    if abs(fine) < MIN_SKEW or sharpness(fine) <= sharpness(0.0) * 1.05:
        return 0.0  # not clearly better than leaving the page alone
    return round(float(fine), 2)


def _otsu(pixels) -> float:
    import numpy as np

    histogram = np.bincount(pixels.astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    total = histogram.sum()
    levels = np.arange(256)
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * levels)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1e-9)
    return float(np.argmax(between))


def _bicubic():
    from PIL import Image

    return Image.Resampling.BICUBIC


def _background(image) -> tuple[int, int, int]:
    """The page's most common border colour, to fill the corners a rotation uncovers."""
    import numpy as np

    pixels = np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))  # type: ignore[return-value]


def _unrotate(
    xs: list[float], ys: list[float], angle: float, rotated: tuple[int, int], size: tuple[int, int]
):
    """Points on the levelled page (`rotated` pixels) mapped back onto the page as given (`size` pixels): PIL
    turned it counter-clockwise on screen by `angle` about the centre, which stays the centre."""
    import math

    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    out_x, out_y = [], []
    for x, y in zip(xs, ys, strict=True):
        dx, dy = x - rotated[0] / 2, y - rotated[1] / 2
        out_x.append(size[0] / 2 + dx * cos - dy * sin)
        out_y.append(size[1] / 2 + dx * sin + dy * cos)
    return out_x, out_y


def _reading_order(lines: list):
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
    image = open_image(data)
    frames = getattr(image, "n_frames", 1)
    if frames > max_pages:
        raise DocumentTooLarge(f"the image has {frames:,} pages (frames), over the limit of {max_pages:,}")
    pages = []
    for number in range(frames):
        deadline.check(f"OCR of page {number + 1}")
        metering.report("local", "rapidocr", ocr_pages=1)  # pages the parser read by OCR (usage metering)
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
            Line(
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
            Page(number + 1, lines, sum(len(line.text) for line in lines), 0, frame.width, height, ocr=True)
        )
    document = layout_document(pages, "local/rapidocr")
    document.warnings = [w for w in document.warnings if "OCRed" not in w]
    if not document.text.strip():
        document.warnings.append("no text found in the image")
    return document
