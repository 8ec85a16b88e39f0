"""The review page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), over a live API.

A scanned receipt (an image drawn here, read by OCR) and a born-digital invoice (a sample PDF) are uploaded
and processed through the pipeline; the page lists them, shows each page image with the extracted values'
boxes drawn where the values stand, highlights a field's box when it is clicked, and saves a correction that
is still there after a reload. Screenshots land in test-artifacts/review/. The page's endpoints (page
images, markdown, chunks) are checked over HTTP first, another tenant included.
"""

import io
from collections.abc import Iterator

import httpx
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from PIL import Image, ImageDraw, ImageFont
from test_api import SAMPLES, Tenant, api_settings, process, server  # noqa: F401 - fixtures

from docflow.runtime import REPO_ROOT

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "test-artifacts" / "review"
INVOICE = SAMPLES / "invoice-northwind-2024-0042.pdf"
RECEIPT_ROWS = [
    ("CORNER CAFE", ""),
    ("221 Baker Street, London NW1 6XE", ""),
    ("Tel 020 7946 0000", ""),
    ("RECEIPT #000871", ""),
    ("Date: 2024-05-02 12:41", ""),
    ("1 x Flat white", "3.40"),
    ("1 x Almond croissant", "2.95"),
    ("1 x Sparkling water", "1.80"),
    ("SUBTOTAL", "8.15"),
    ("VAT included (20%)", "1.36"),
    ("TOTAL GBP", "8.15"),
    ("Paid by: VISA contactless **** 4421", ""),
    ("Thank you for your visit!", ""),
]
# what each document's test corrects (a text field of its type) and confirms
EDITS = {"invoice": ("invoice_number", "INV-2024-0042-R"), "receipt": ("store_name", "Corner Cafe Soho")}
CONFIRMS = {"invoice": "total_amount", "receipt": "total"}
IMAGE_READY = "img => img.complete && img.naturalWidth > 0"


def scanned_receipt() -> bytes:
    """A till receipt as a scanner would give it: a PNG of text, labels left and amounts right."""
    page = Image.new("RGB", (820, 80 + 56 * len(RECEIPT_ROWS)), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=28)
    for i, (label, amount) in enumerate(RECEIPT_ROWS):
        y = 40 + i * 56
        draw.text((50, y), label, fill="black", font=font)
        if amount:
            draw.text((770, y), amount, fill="black", font=font, anchor="ra")
    out = io.BytesIO()
    page.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def docs(rt, instance, server) -> Iterator[tuple[Tenant, dict[str, str]]]:  # noqa: F811
    """The tenant and its processed documents: invoice (PDF), receipt (PNG scan), note (plain text)."""
    tenant = Tenant(rt, server.url)
    uploads = {
        "invoice": (INVOICE.read_bytes(), INVOICE.name),
        "receipt": (scanned_receipt(), "scanned-receipt.png"),
        "note": (b"Meeting notes\nNothing to extract here.\n", "note.txt"),
    }
    ids = {}
    for name, (body, filename) in uploads.items():
        r = tenant.upload(body, filename)
        assert r.status_code == 202, r.text
        ids[name] = r.json()["doc_id"]
        process(instance, [ids[name]])  # one at a time: the sensor may batch new documents into one run
    for name, doc_id in ids.items():
        detail = tenant.client.get(f"/v1/documents/{doc_id}").json()
        assert detail["status"] == "done", (name, detail)
    yield tenant, ids
    tenant.client.close()


def _png(r: httpx.Response) -> Image.Image:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(r.content))


def test_page_images_markdown_and_chunks_are_the_tenants_own(rt, server, docs) -> None:  # noqa: F811
    tenant, ids = docs
    client = tenant.client

    r = client.get(f"/v1/documents/{ids['invoice']}/pages/1")
    image = _png(r)
    assert r.headers["x-page-count"] == "1"
    assert 800 < image.width < 1100 and image.height > image.width  # a portrait page at the default DPI
    assert "private" in r.headers["cache-control"] and r.headers["etag"]
    again = client.get(
        f"/v1/documents/{ids['invoice']}/pages/1", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and not again.content
    small = _png(client.get(f"/v1/documents/{ids['invoice']}/pages/1", params={"dpi": 50}))
    assert small.width < image.width / 2
    assert client.get(f"/v1/documents/{ids['invoice']}/pages/1", params={"dpi": 5000}).status_code == 422
    assert client.get(f"/v1/documents/{ids['invoice']}/pages/2").status_code == 404

    scan = _png(client.get(f"/v1/documents/{ids['receipt']}/pages/1"))
    assert scan.size == Image.open(io.BytesIO(scanned_receipt())).size  # the scan as uploaded

    no_pages = client.get(f"/v1/documents/{ids['note']}/pages/1")
    assert no_pages.status_code == 404 and "no page images" in no_pages.json()["detail"]

    md = client.get(f"/v1/documents/{ids['invoice']}/markdown")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "INV-2024-0042" in md.text

    chunks = client.get(f"/v1/documents/{ids['invoice']}/chunks").json()["chunks"]
    assert chunks and [c["index"] for c in chunks] == list(range(len(chunks)))
    assert "INV-2024-0042" in " ".join(c["text"] for c in chunks)
    assert all(c["page_start"] == 1 for c in chunks)
    boxes = [b for c in chunks for b in c["boxes"]]
    assert boxes, "the invoice's chunks carry no page boxes (P2: chunks.boxes)"
    for b in boxes:
        assert b["page"] == 1 and 0 <= b["x0"] < b["x1"] <= 1 and 0 <= b["y0"] < b["y1"] <= 1

    # another tenant sees none of it, and no byte of it is read for them
    other = Tenant(rt, server.url)
    try:
        for path in ("pages/1", "markdown", "chunks"):
            r = other.client.get(f"/v1/documents/{ids['invoice']}/{path}")
            assert r.status_code == 404, (path, r.status_code)
    finally:
        other.client.close()
    assert httpx.get(f"{server.url}/v1/documents/{ids['invoice']}/pages/1").status_code == 401


def _missing_parts(client: httpx.Client) -> str | None:
    """The parts of issue #20 the page builds on that this checkout does not have yet."""
    openapi = client.get("/openapi.json").json()
    paths = openapi["paths"]
    missing = []
    if "provenance" not in openapi["components"]["schemas"]["DocumentDetail"]["properties"]:
        missing.append("P2 (provenance in GET /v1/documents/{id})")
    if "patch" not in paths.get("/v1/documents/{doc_id}/fields", {}):
        missing.append("P3 (PATCH /v1/documents/{id}/fields)")
    return " and ".join(missing) or None


@pytest.mark.parametrize("kind", ["invoice", "receipt"])
def test_the_page_draws_the_values_boxes_and_keeps_a_correction(docs, server, kind: str) -> None:  # noqa: F811
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it as root with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    tenant, ids = docs
    if missing := _missing_parts(tenant.client):
        pytest.skip(f"issue #20's {missing} has not landed: the page has nothing to draw or save")
    doc_id = ids[kind]
    detail = tenant.client.get(f"/v1/documents/{doc_id}").json()
    on_page_1 = {path for path, src in detail["provenance"].items() if src["page"] == 1}
    assert on_page_1, f"the {kind}'s values have no boxes on page 1: {detail['provenance']}"
    field, new_value = EDITS[kind]
    assert field in detail["fields"], detail["fields"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(server.url + "/")
            page.fill("#key", tenant.key)
            page.click("#save-key")

            # the list: every document of the tenant with its status and type
            row = page.wait_for_selector(f"#doc-table tr[data-open='{doc_id}']")
            for other in ids.values():
                page.wait_for_selector(f"#doc-table tr[data-open='{other}'] .status.done")
            assert (row.query_selector(".doc-type").inner_text() or "") == detail["doc_type"]
            row.query_selector("a").click()

            # the page image, and a box for every value read on it, inside the image
            img = page.wait_for_selector("#page-wrap:not([hidden]) img")
            page.wait_for_function(IMAGE_READY, arg=img)
            page.wait_for_selector("#boxes .box[data-path]", timeout=10_000)
            frame = img.bounding_box()
            boxes = page.query_selector_all("#boxes .box[data-path]")
            assert {b.get_attribute("data-path") for b in boxes} == on_page_1
            for box in boxes:
                r = box.bounding_box()
                assert r["width"] > 0 and r["height"] > 0
                assert frame["x"] - 1 <= r["x"] and r["x"] + r["width"] <= frame["x"] + frame["width"] + 1
                assert frame["y"] - 1 <= r["y"] and r["y"] + r["height"] <= frame["y"] + frame["height"] + 1
            # where the value's box is drawn, relative to the image, is where provenance says it is
            path = field if field in on_page_1 else sorted(on_page_1)[0]
            src = detail["provenance"][path]
            drawn = page.query_selector(f"#boxes .box[data-path='{path}']").bounding_box()
            assert abs((drawn["x"] - frame["x"]) / frame["width"] - src["x0"]) < 0.01
            assert abs((drawn["y"] - frame["y"]) / frame["height"] - src["y0"]) < 0.01

            # a field's click highlights its box (and only it)
            page.click(f"#fields tr[data-path='{path}'] th")
            page.wait_for_selector(f"#boxes .box.hl[data-path='{path}']")
            assert page.locator("#boxes .box.hl").count() == 1
            page.wait_for_selector("#markdown:not(:empty)")
            page.screenshot(path=ARTIFACTS / f"{kind}.png", full_page=True)
            page.locator("#page-wrap").screenshot(path=ARTIFACTS / f"{kind}-page.png")

            # correct a value and confirm another; both are there after a reload
            page.fill(f"#fields input.value[data-path='{field}']", new_value)
            page.click("#save-fields")
            page.wait_for_selector("#save-status:has-text('saved')")
            confirm = CONFIRMS[kind]
            if confirm in detail["fields"] and detail["fields"][confirm] is not None:
                page.click(f"#fields tr[data-path='{confirm}'] button.confirm")
                page.wait_for_selector(f"#fields tr[data-path='{confirm}'] .review.confirm")
            page.reload()
            page.wait_for_selector(f"#fields tr[data-path='{field}'] .review.correct")
            assert page.input_value(f"#fields input.value[data-path='{field}']") == new_value
            if confirm in detail["fields"] and detail["fields"][confirm] is not None:
                assert page.locator(f"#fields tr[data-path='{confirm}'] .review.confirm").count() == 1
            page.wait_for_selector("#boxes .box[data-path]")
            page.screenshot(path=ARTIFACTS / f"{kind}-reviewed.png", full_page=True)
        finally:
            browser.close()

    after = tenant.client.get(f"/v1/documents/{doc_id}").json()
    assert after["fields"][field] == new_value
    assert after["reviews"][field]["action"] == "correct"
