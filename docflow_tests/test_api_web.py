"""The API's web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): upload a file
and a URL, watch the stages arrive live over SSE while the pipeline runs, search and ask."""

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from test_api import INVOICE, Tenant, api_settings, process, remote, server  # noqa: F401 - fixtures

from docflow.runtime import REPO_ROOT

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "test-artifacts"


def test_the_page_uploads_watches_stages_live_searches_and_asks(rt, instance, server, remote) -> None:  # noqa: F811
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it as root with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    tenant = Tenant(rt, server.url)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(server.url + "/")

            # a wrong key: the page shows the API's error
            page.fill("#key", "dfk_wrong")
            page.click("#save-key")
            page.set_input_files("#file", files=[_file("wrong.txt", b"hello")])
            page.click("#upload-form button")
            page.wait_for_selector("#upload-error:has-text('unknown or revoked API key')")

            page.fill("#key", tenant.key)
            page.click("#save-key")
            body = INVOICE.replace("{tag}", tenant.name).encode()
            page.set_input_files("#file", files=[_file("web-invoice.txt", body)])
            page.click("#upload-form button")
            row = page.wait_for_selector("[data-doc]")
            doc_id = row.get_attribute("data-doc")
            page.wait_for_selector(f"[data-doc='{doc_id}'] [data-stage='uploaded'].on")
            assert page.locator(f"[data-doc='{doc_id}'] .stage.on").count() == 1  # nothing processed yet

            process(instance, [doc_id])  # the stream is open: the stages arrive live
            page.wait_for_selector(f"[data-doc='{doc_id}'] [data-stage='done'].on", timeout=60_000)
            for stage in ("classified", "parsed", "extracted", "embedded"):
                assert page.locator(f"[data-doc='{doc_id}'] [data-stage='{stage}'].on").count() == 1
            assert "invoice" in page.inner_text(f"[data-doc='{doc_id}'] .doc-info")

            page.fill("#url", f"{remote.url}/doc/web-{tenant.name}.txt")
            page.click("#url-form button")
            page.wait_for_selector(f"[data-doc]:has-text('web-{tenant.name}.txt') [data-stage='uploaded'].on")

            page.fill("#q", "Northwind consulting total")
            page.click("#search-form button")
            page.wait_for_selector("#hits .hit:has-text('web-invoice.txt')")

            page.fill("#question", "What is the total due on the Northwind invoice?")
            page.click("#ask-form button")
            page.wait_for_selector(f"#sources .hit:has-text('{doc_id}')")
            assert "1200" in page.inner_text("#answer")
            page.screenshot(path=ARTIFACTS / "api-page.png", full_page=True)
        finally:
            browser.close()
            tenant.client.close()


def _file(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "text/plain", "buffer": data}
