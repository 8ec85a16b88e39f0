"""OCR of rendered text pages: skew correction, reading order of tilted pages, confidences."""

import pytest

pytest.importorskip("rapidocr")

from PIL import Image, ImageDraw, ImageFont

from docflow.backends.parse import ocr

ROWS = [
    ("Invoice number", "INV-2291"),
    ("Invoice date", "14 May 2024"),
    ("Subtotal", "1,240.00"),
    ("Tax", "124.00"),
    ("Total due", "1,364.00"),
]


def label_value_page() -> Image.Image:
    """A page of labels on the left and their values far to the right, as on invoices and forms."""
    page = Image.new("RGB", (1100, 420), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=30)
    for i, (label, value) in enumerate(ROWS):
        draw.text((60, 40 + i * 70), label, fill="black", font=font)
        draw.text((820, 40 + i * 70), value, fill="black", font=font)
    return page


def tilt(image: Image.Image, degrees: float) -> Image.Image:
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255), expand=True)


@pytest.mark.parametrize("degrees", [-6.0, 3.0, 8.0])
def test_skew_angle_finds_the_tilt_of_a_page(degrees: float) -> None:
    assert ocr.skew_angle(tilt(label_value_page(), degrees)) == pytest.approx(-degrees, abs=0.5)


def test_a_level_page_is_left_alone() -> None:
    page = label_value_page()
    levelled, angle = ocr.deskew(page)
    assert angle == 0.0 and levelled.tobytes() == page.tobytes()
    assert ocr.skew_angle(Image.new("RGB", (300, 200), "white")) == 0.0  # nothing to level by


def test_a_tilted_page_is_read_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    tilted = tilt(label_value_page(), -7)
    expected = [text for row in ROWS for text in row]
    lines = ocr.ocr_lines(tilted)
    assert [line[0] for line in lines] == expected
    for _, left, top, right, bottom in lines:  # boxes are on the page as given
        assert 0 <= left < right <= tilted.width + 1 and 0 <= top < bottom <= tilted.height + 1
    boxes = {line[0]: line[1:] for line in lines}
    assert boxes["Total due"][1] > boxes["Invoice number"][3]  # below
    assert boxes["INV-2291"][0] > boxes["Invoice number"][2]  # to the right

    monkeypatch.setattr(ocr, "DESKEW", False)
    # read as tilted, a value's box sits a row lower than its label's and the rows interleave
    assert [line[0] for line in ocr.ocr_lines(tilted)] != expected


def test_lines_carry_the_recognisers_confidence() -> None:
    page = label_value_page()
    scored = ocr.ocr_lines_scored(page)
    assert [line[0] for line in scored] == [text for row in ROWS for text in row]
    assert all(0.5 < line[5] <= 1.0 for line in scored)
    assert ocr.ocr_lines(page) == [line[:5] for line in scored]


def test_a_small_page_is_enlarged_and_its_boxes_stay_in_its_pixels() -> None:
    page = Image.new("RGB", (700, 220), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=16)
    draw.text((40, 40), "Received from Harbour Supplies", fill="black", font=font)
    draw.text((40, 140), "Amount paid 1,364.00", fill="black", font=font)
    assert ocr.upscale(page).size == (ocr.MIN_SIDE, round(220 * ocr.MIN_SIDE / 700))
    large = Image.new("RGB", (ocr.MIN_SIDE * 2, 100), "white")
    assert ocr.upscale(large) is large

    lines = {line[0]: line[1:] for line in ocr.ocr_lines(page)}
    assert set(lines) == {"Received from Harbour Supplies", "Amount paid 1,364.00"}
    for text, y in (("Received from Harbour Supplies", 40), ("Amount paid 1,364.00", 140)):
        left, top, right, bottom = lines[text]
        drawn = draw.textbbox((40, y), text, font=font)
        assert abs(left - drawn[0]) < 8 and abs(right - drawn[2]) < 8
        assert top <= drawn[1] + 4 and bottom >= drawn[3] - 4 and bottom - top < 40
