"""Usage metering on the real services: documents processed by the pipeline (local backends, and the OpenAI
backends against the local OpenAI stub) land in docflow.usage for their tenant and day; `docflow usage`,
GET /v1/usage and the `usage_daily` asset report them per day; the price table prices them."""

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner
from live import LiveServer
from openai_stub import OpenAIStub, StubServer
from test_parse_llamacloud import RAW, FakeLlamaCloud, parser_for

from docflow import ingest, metering
from docflow.api.app import create_app
from docflow.cli import cli
from docflow.defs.assets import build_assets
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.defs.usage import usage_daily
from docflow.pipeline import STEPS, Runtime, process
from docflow.runtime import REPO_ROOT
from docflow.settings import Settings, get_settings
from docflow.store import tenants
from docflow.store.usage import daily

SAMPLES = REPO_ROOT / "data" / "samples"
INVOICE = SAMPLES / "invoice-northwind-2024-0042.pdf"
TEST_PRICES = """
prices:
  openai:
    gpt-4o-mini: {input_per_1k_tokens: 1.0, output_per_1k_tokens: 2.0}
    text-embedding-3-small: {input_per_1k_tokens: 0.5}
"""


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def _upload(rt: Runtime, path, tenant: str) -> str:
    up = ingest.plan_upload(path, path.parent, rt.settings.prefix, tenant)
    ingest.upload(rt.bucket, rt.store, up)
    return up.doc_id


def _line(day: dict, backend: str, model: str = "") -> dict:
    return next(b for b in day["backends"] if (b["backend"], b["model"]) == (backend, model))


# --- the price table (pure) -----------------------------------------------------------------------------


PRICES = metering.Prices.from_mapping(
    {
        "prices": {
            "openai": {
                "m": {"input_per_1k_tokens": 1.0, "output_per_1k_tokens": 4.0},
                "*": {"per_call": 0.5},
            },
            "llamacloud": {"parse": {"per_page": {"fast": 0.001, "agentic": 0.01}, "per_credit": 0.002}},
        }
    }
)


@pytest.mark.parametrize(
    ("backend", "model", "line", "cost"),
    [
        ("openai", "m", metering.Line(input_tokens=2000, output_tokens=500), 4.0),
        ("openai", "other", metering.Line(remote_calls=3, input_tokens=10_000), 1.5),  # "*": per call only
        ("llamacloud", "parse@fast", metering.Line(pages_billed=10), 0.01),
        ("llamacloud", "parse@agentic", metering.Line(pages_billed=10), 0.1),
        ("llamacloud", "parse@agentic", metering.Line(pages_billed=10, credits=30), 0.06),  # credits win
        ("local", "", metering.Line(documents=1, pages=5, ocr_pages=5), 0.0),
    ],
)
def test_cost_is_counts_times_the_price_table(backend, model, line, cost) -> None:
    assert PRICES.cost(backend, model, line) == pytest.approx(cost)


def test_the_shipped_price_table_loads_and_prices_the_default_models() -> None:
    prices = metering.load_prices()
    settings = Settings()
    assert prices.cost("openai", settings.openai_model, metering.Line(input_tokens=1_000_000)) > 0
    assert prices.cost("openai", settings.openai_embed_model, metering.Line(input_tokens=1_000_000)) > 0
    tier = f"parse@{settings.llama_parse_tier}"
    assert prices.cost("llamacloud", tier, metering.Line(pages_billed=1000)) > 0
    with pytest.raises(ValueError, match="unknown keys"):
        metering.Prices.from_mapping({"prices": {"openai": {"m": {"per_token": 1}}}})


def test_reports_outside_a_metered_step_go_nowhere_and_inside_add_up() -> None:
    metering.report("openai", "m", remote_calls=1)  # no meter: nothing happens, nothing raises
    with metering.metered() as meter:
        metering.report("openai", "m", remote_calls=1, input_tokens=5)
        metering.report("openai", "m", remote_calls=1, input_tokens=7, output_tokens=1)
    assert meter.lines[("openai", "m")] == metering.Line(remote_calls=2, input_tokens=12, output_tokens=1)


@pytest.fixture
def llamacloud() -> Iterator[str]:
    FakeLlamaCloud.calls = []
    FakeLlamaCloud.script = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLlamaCloud)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_llamaparse_reports_its_requests_and_the_pages_it_bills(llamacloud) -> None:
    with metering.metered() as meter:
        doc = parser_for(llamacloud).parse(b"%PDF-1.4 x", RAW)
    line = meter.lines[("llamacloud", "parse@fast")]
    assert line.pages_billed == doc.pages == 2
    assert line.remote_calls == len(FakeLlamaCloud.calls) >= 4  # upload, create, polls, result


def test_a_failed_llamaparse_job_still_counts_its_requests(llamacloud) -> None:
    FakeLlamaCloud.script = {"final": "FAILED"}
    with metering.metered() as meter, pytest.raises(Exception, match="failed"):
        parser_for(llamacloud).parse(b"%PDF-1.4 x", RAW)
    line = meter.lines[("llamacloud", "parse@fast")]
    assert line.remote_calls == len(FakeLlamaCloud.calls) and line.pages_billed == 0


# --- the pipeline writes usage --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_tenant(rt, instance) -> str:
    """A tenant whose invoice was processed twice by the five steps (local backends): by the assets in a
    Dagster run, then again by the plain loop (as after a configuration change or --force)."""
    tenant = f"u{uuid.uuid4().hex[:8]}"
    doc_id = _upload(rt, INVOICE, tenant)
    instance.add_dynamic_partitions(documents.name, [doc_id])
    run = dg.materialize(
        build_assets(get_settings()),
        partition_key=doc_id,
        instance=instance,
        resources={"docflow": DocflowResource()},
    )
    assert run.success
    process(rt, doc_id)  # work done again, counted again
    assert rt.store.get_document(doc_id).status == "done"
    return tenant


def test_processing_records_documents_pages_and_bytes_for_the_tenant_and_day(rt, local_tenant) -> None:
    days = daily(rt.store, local_tenant)
    assert [d["day"] for d in days] == [today()]
    day = days[0]
    doc = rt.store.list_documents(tenant=local_tenant)[0]
    assert doc.pages and doc.pages >= 1
    assert (day["documents"], day["bytes"], day["pages"]) == (2, 2 * INVOICE.stat().st_size, 2 * doc.pages)
    assert day["remote_calls"] == day["input_tokens"] == day["pages_billed"] == 0
    assert day["cost_usd"] == 0  # local backends cost nothing in the price table
    assert _line(day, "bucket")["documents"] == 2 and _line(day, "local")["pages"] == 2 * doc.pages
    with rt.store.tx() as conn:
        steps = conn.execute(
            "SELECT DISTINCT step FROM docflow.usage WHERE tenant = %s", (local_tenant,)
        ).fetchall()
    assert {s["step"] for s in steps} == {"raw_file", "parsed_markdown"}  # nothing else was counted
    assert daily(rt.store, f"{local_tenant}-nobody") == []


def test_a_scanned_page_counts_as_an_ocr_page(rt, tmp_path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (900, 300), "white")
    font = ImageFont.load_default(48)
    ImageDraw.Draw(image).text((40, 100), "RECEIPT Total 12.50", fill="black", font=font)
    path = tmp_path / "scan.png"
    image.save(path)
    tenant = f"u{uuid.uuid4().hex[:8]}"
    doc_id = _upload(rt, path, tenant)
    for step in ("raw_file", "parsed_markdown"):
        STEPS[step](rt, doc_id)
    day = daily(rt.store, tenant)[0]
    assert day["ocr_pages"] == 1 == _line(day, "local", "rapidocr")["ocr_pages"]
    assert (day["documents"], day["pages"]) == (1, 1)


@pytest.fixture(scope="module")
def openai_stub() -> Iterator[tuple[OpenAIStub, str]]:
    def reply(messages: list[dict[str, str]]) -> str:
        if messages[0]["content"].startswith("You classify"):
            return '{"doc_type": "invoice", "confidence": 0.9, "reasoning": "stub: invoice number"}'
        return '{"invoice_number": "NW-2024-0042"}'

    with StubServer(OpenAIStub(chat_reply=reply)) as served:
        yield served


@pytest.fixture(scope="module")
def remote(rt, openai_stub, tmp_path_factory) -> tuple[Runtime, OpenAIStub]:
    stub, base_url = openai_stub
    prices = tmp_path_factory.mktemp("prices") / "prices.yaml"
    prices.write_text(TEST_PRICES)
    settings = Settings(
        classify_backend="openai",
        extract_backend="openai",
        embed_backend="openai",
        openai_base_url=base_url,
        openai_api_key="sk-test",
        openai_model="gpt-4o-mini",
        openai_embed_model="text-embedding-3-small",
        openai_embed_dimensions=16,
        prices_path=prices,
    )
    return Runtime(store=rt.store, bucket=rt.bucket, settings=settings), stub


def test_remote_backends_record_calls_tokens_and_cost(remote) -> None:
    rt, stub = remote
    tenant = f"u{uuid.uuid4().hex[:8]}"
    doc_id = _upload(rt, INVOICE, tenant)
    stub.requests.clear()
    stub.fail("/embeddings", 503)  # one attempt fails and is retried: both were sent
    process(rt, doc_id)
    assert rt.store.get_document(doc_id).status == "done"
    day = daily(rt.store, tenant)[0]
    chat, embed = _line(day, "openai", "gpt-4o-mini"), _line(day, "openai", "text-embedding-3-small")
    assert chat["remote_calls"] == len(stub.calls("/chat/completions")) == 2  # classify + extract
    assert (chat["input_tokens"], chat["output_tokens"]) == (2, 2)  # the stub answers usage 1 + 1
    assert embed["remote_calls"] == len(stub.calls("/embeddings")) == 2
    words = sum(len(t.split()) for r in stub.calls("/embeddings")[1:] for t in r.body["input"])
    assert embed["input_tokens"] == words > 0  # the answered request's usage.prompt_tokens
    assert chat["cost_usd"] == pytest.approx(2 * 1.0 / 1000 + 2 * 2.0 / 1000)
    assert embed["cost_usd"] == pytest.approx(words * 0.5 / 1000)
    assert day["cost_usd"] == pytest.approx(chat["cost_usd"] + embed["cost_usd"])
    assert day["remote_calls"] == 4 and day["documents"] == 1

    # a step whose remote call is refused fails, and the call it made is counted (without tokens)
    stub.fail("/chat/completions", 400)
    with pytest.raises(Exception, match=r"refused the request"):
        STEPS["extracted_fields"](rt, doc_id)
    after = _line(daily(rt.store, tenant)[0], "openai", "gpt-4o-mini")
    assert after["remote_calls"] == 3 and after["input_tokens"] == 2


# --- docflow usage, GET /v1/usage, usage_daily ----------------------------------------------------------


def test_cli_usage_json_and_table(rt, local_tenant) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["usage", "--tenant", local_tenant, "--json"])
    assert done.exit_code == 0, done.output
    days = json.loads(done.output)
    assert days == daily(rt.store, local_tenant)
    assert days[0]["tenant"] == local_tenant and days[0]["documents"] == 2
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    done = runner.invoke(cli, ["usage", "--tenant", local_tenant, "--to", yesterday, "--json"])
    assert json.loads(done.output) == []
    done = runner.invoke(cli, ["usage", "--from", today(), "--to", today()])
    assert done.exit_code == 0 and local_tenant in done.output and "cost_usd" in done.output
    done = runner.invoke(cli, ["usage", "--from", today(), "--to", yesterday])
    assert done.exit_code == 2 and "after --to" in done.output


def test_api_usage_per_day_for_the_callers_tenant_only(rt, instance, local_tenant) -> None:
    live = LiveServer(create_app(get_settings(), instance))
    try:
        key = tenants.create_api_key(rt.store, local_tenant, "usage test")
        other = tenants.create_api_key(rt.store, f"{local_tenant}-other", "usage test")
        with httpx.Client(base_url=live.url, timeout=30) as client:
            auth = {"Authorization": f"Bearer {key}"}
            body = client.get("/v1/usage", params={"from": today(), "to": today()}, headers=auth).json()
            assert body["tenant"] == local_tenant and body["day"] == today()
            assert {"documents", "bytes", "docs_per_day", "bytes_per_day"} <= set(body)  # today's quota
            expected = [{k: v for k, v in d.items() if k != "tenant"} for d in daily(rt.store, local_tenant)]
            assert body["days"] == expected and body["days"][0]["documents"] == 2
            assert client.get("/v1/usage", headers=auth).json()["days"] == expected  # default: 30 days
            old = client.get("/v1/usage", params={"from": "2020-01-01", "to": "2020-01-31"}, headers=auth)
            assert old.status_code == 200 and old.json()["days"] == []
            bad = client.get("/v1/usage", params={"from": today(), "to": "2020-01-01"}, headers=auth)
            assert bad.status_code == 400
            theirs = client.get("/v1/usage", headers={"Authorization": f"Bearer {other}"}).json()
            assert theirs["days"] == []
    finally:
        live.stop()


def test_row_level_security_hides_other_tenants_usage(rt, local_tenant) -> None:
    settings = get_settings()
    store = tenants.TenantStore(tenants.api_database_url(settings), f"{local_tenant}-other")
    assert daily(store) == []  # no tenant filter in the query: the policy alone hides the rows
    mine = tenants.TenantStore(tenants.api_database_url(settings), local_tenant)
    assert {d["tenant"] for d in daily(mine)} == {local_tenant}


def test_usage_daily_materializes_a_table_per_tenant_and_a_plot(instance, local_tenant) -> None:
    result = dg.materialize(
        [usage_daily], partition_key=today(), instance=instance, resources={"docflow": DocflowResource()}
    )
    assert result.success
    metadata = result.asset_materializations_for_node("usage_daily")[0].metadata
    rows = {r.data["tenant"]: r.data for r in metadata["by_tenant"].value.records}
    assert rows[local_tenant]["documents"] == 2 and rows[local_tenant]["cost_usd"] == 0
    assert metadata["documents"].value >= 2 and metadata["tenants"].value == len(rows)
    backends = metadata["by_backend"].value.records
    assert any(r.data["tenant"] == local_tenant and r.data["backend"] == "bucket" for r in backends)
    plot = metadata["plot"].value
    assert plot.startswith("![usage")
    png = base64.b64decode(plot.split("base64,", 1)[1].rstrip(")"))
    assert png.startswith(b"\x89PNG")


def test_the_schedule_materializes_yesterday_once_the_utc_day_is_over() -> None:
    from docflow.defs.usage import usage_daily_schedule

    tick = datetime(2026, 3, 1, 0, 15, tzinfo=UTC)
    request = usage_daily_schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    assert request.partition_key == "2026-02-28" and request.run_key == "usage-2026-02-28"
