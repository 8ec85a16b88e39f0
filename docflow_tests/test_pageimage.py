"""Page images for the review page: PDF pages rendered, image frames converted, sizes bounded, formats
without pages refused."""

import io

import pytest
from PIL import Image

from docflow import pageimage
from docflow.errors import BadDocument, NotFound
from docflow.runtime import REPO_ROOT

INVOICE = REPO_ROOT / "data" / "samples" / "invoice-northwind-2024-0042.pdf"


def _open(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image


@pytest.mark.parametrize(("dpi", "width"), [(72, 595), (110, 909), (10, 298), (1000, 1414)])
def test_a_pdf_page_is_rendered_at_the_dpi_within_bounds(dpi: int, width: int) -> None:
    png, count = pageimage.page_png(INVOICE.read_bytes(), "application/pdf", 1, dpi)
    image = _open(png)
    assert count == 1
    # an A4 page (595 x 842 points); the DPI is held to 36..200 and the long side to 2000 pixels
    assert abs(image.width - width) <= 1 and image.height > image.width
    assert max(image.size) <= pageimage.MAX_SIDE


def test_every_frame_of_a_tiff_is_a_page_and_large_images_are_scaled_down() -> None:
    frames = [Image.new("L", (3000, 1500), shade) for shade in (0, 255)]
    data = io.BytesIO()
    frames[0].save(data, "TIFF", save_all=True, append_images=frames[1:])
    first, count = pageimage.page_png(data.getvalue(), "image/tiff", 1)
    second, _ = pageimage.page_png(data.getvalue(), "image/tiff", 2)
    assert count == 2
    assert _open(first).size == (2000, 1000)  # the aspect ratio kept, so fractions still fit
    assert _open(first).convert("L").getpixel((10, 10)) == 0
    assert _open(second).convert("L").getpixel((10, 10)) == 255
    with pytest.raises(NotFound, match="page 3 does not exist"):
        pageimage.page_png(data.getvalue(), "image/tiff", 3)


def test_a_small_image_is_returned_as_it_is() -> None:
    data = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 10, 10)).save(data, "JPEG")
    png, count = pageimage.page_png(data.getvalue(), "image/jpeg", 1)
    assert count == 1 and _open(png).size == (640, 480)


@pytest.mark.parametrize("content_type", ["text/plain", "text/html", "image/svg+xml", ""])
def test_formats_without_pages_are_not_found(content_type: str) -> None:
    assert not pageimage.has_pages(content_type)
    with pytest.raises(pageimage.NoPages):
        pageimage.page_png(b"hello", content_type, 1)


def test_a_page_a_pdf_lacks_and_a_corrupt_pdf() -> None:
    with pytest.raises(NotFound, match="has 1 page"):
        pageimage.page_png(INVOICE.read_bytes(), "application/pdf", 2)
    with pytest.raises(BadDocument):
        pageimage.page_png(b"%PDF-1.7 truncated", "application/pdf", 1)
