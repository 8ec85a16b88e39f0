"""A document's page as a PNG image: what the review page draws the extracted values' boxes on.

PDF pages are rendered by PDFium, image frames (every TIFF page) are converted. Boxes are fractions of the
page (origin top-left), so they fit the page at any scale. Other formats (text, office, e-mail) have no
page images.
"""

import io

from docflow.backends.parse.ocr import open_image
from docflow.errors import BadDocument, MissingExtra, NotFound
from docflow.sniff import PDF, PDFIUM_LOCK, SVG, open_pdf

DEFAULT_DPI = 110  # a letter page about 940 pixels wide: a screen's width, text still legible
MIN_DPI = 36
MAX_DPI = 200
MAX_SIDE = 2000  # pixels on the long side at most, whatever the DPI or the image (bounded work and size)


class NoPages(NotFound):
    """The document's format has no page images."""


def has_pages(content_type: str) -> bool:
    return content_type == PDF or (content_type.startswith("image/") and content_type != SVG)


def page_png(data: bytes, content_type: str, number: int, dpi: int = DEFAULT_DPI) -> tuple[bytes, int]:
    """Page `number` (1-based) as PNG bytes, and the document's number of pages. `NoPages` for a format
    without pages, `NotFound` for a page it does not have."""
    if not has_pages(content_type):
        raise NoPages(f"a {content_type or 'document of unknown type'} has no page images")
    dpi = max(MIN_DPI, min(MAX_DPI, dpi))
    image, count = _pdf_page(data, number, dpi) if content_type == PDF else _image_frame(data, number)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue(), count


def _check(number: int, count: int) -> None:
    if not 1 <= number <= count:
        raise NotFound(f"page {number} does not exist: the document has {count} page(s)")


def _pdf_page(data: bytes, number: int, dpi: int):
    try:
        import PIL.Image  # noqa: F401 - to_pil() needs it
    except ImportError as exc:  # pragma: no cover
        raise MissingExtra("pillow", "ocr", "page images") from exc
    with open_pdf(data) as document:
        count = len(document)
        _check(number, count)
        with PDFIUM_LOCK:
            page = document[number - 1]
            try:
                width, height = page.get_size()
                scale = min(dpi / 72, MAX_SIDE / max(width, height, 1))
                return page.render(scale=scale, may_draw_forms=True).to_pil().convert("RGB"), count
            finally:
                page.close()


def _image_frame(data: bytes, number: int):
    image = open_image(data)
    count = getattr(image, "n_frames", 1)
    _check(number, count)
    try:
        image.seek(number - 1)
        frame = image.convert("RGB")
    except (OSError, ValueError, EOFError) as exc:
        raise BadDocument(f"the image is corrupt or truncated (frame {number}: {exc})") from exc
    frame.thumbnail((MAX_SIDE, MAX_SIDE))  # keeps the aspect ratio, never enlarges
    return frame, count
