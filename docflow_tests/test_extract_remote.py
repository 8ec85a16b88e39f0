"""Remote extract backends (LlamaExtract, OpenAI structured outputs) against a local HTTP server that speaks
their documented APIs, with the real clients pointed at it."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_classify_remote import FILE, FakeAPI, completion, llama_settings, openai_settings

from docflow.backends import EXTRACTORS, get_extractor
from docflow.backends.classify.remote import RemoteError
from docflow.backends.extract.llamacloud import LlamaExtractor
from docflow.backends.extract.openai import OpenAIExtractor
from docflow.errors import BackendUnavailable, ConfigError
from docflow.models import Classification, ParsedDocument

PARSED = ParsedDocument(
    markdown="# INVOICE\n\nInvoice number: INV-17\n\nTotal: 1.234,56 EUR\n", text="INVOICE", parser="test"
)


def classified(doc_type: str) -> Classification:
    return Classification(doc_type=doc_type, confidence=0.9, reasoning="test", backend="test")


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    server = FakeAPI()
    yield server
    server.close()


def extract_job(status: str, result: Any = None) -> dict[str, Any]:
    return {
        "id": "ext-1",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:01Z",
        "file_input": "dfl-1",
        "project_id": "p",
        "status": status,
        "extract_result": result,
    }


def test_llamaextract_sends_the_pydantic_schema_and_validates_the_result(api: FakeAPI) -> None:
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/extract", (200, extract_job("PENDING")))
    result = {
        "invoice_number": "INV-17",
        "total_amount": 1234.56,
        "currency": "eur",
        "invoice_date": "31/02/2024",
    }
    api.script(
        "GET", "/api/v2/extract/ext-1", (200, extract_job("RUNNING")), (200, extract_job("COMPLETED", result))
    )
    extraction = LlamaExtractor.from_settings(llama_settings(api)).extract(PARSED, classified("invoice"))
    assert extraction.fields == {"invoice_number": "INV-17", "total_amount": 1234.56, "currency": "EUR"}
    assert any(e.startswith("invoice_date") for e in extraction.validation_errors)  # stored, not raised
    assert (extraction.schema_name, extraction.backend) == ("Invoice", "llamacloud/extract")
    sent = json.loads(api.calls("POST", "/api/v2/extract")[0]["body"])
    schema = sent["configuration"]["data_schema"]
    assert {"invoice_number", "vendor_name", "total_amount", "line_items"} <= set(schema["properties"])
    assert sent["file_input"] == "dfl-1"
    assert b"Invoice number: INV-17" in api.calls("POST", "/api/v1/beta/files")[0]["body"]


def test_llamaextract_generates_a_schema_for_a_type_without_one(api: FakeAPI) -> None:
    generated = {
        "type": "object",
        "properties": {"sender": {"type": "string"}, "subject": {"type": "string"}},
    }
    api.script(
        "POST",
        "/api/v2/extract/schema/generate",
        (
            200,
            {
                "name": "docflow-letter",
                "parameters": {"product_type": "extract_v2", "data_schema": generated},
            },
        ),
    )
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/extract", (200, extract_job("PENDING")))
    api.script(
        "GET", "/api/v2/extract/ext-1", (200, extract_job("COMPLETED", {"sender": "Ann", "subject": None}))
    )
    extractor = LlamaExtractor.from_settings(llama_settings(api))
    for _ in range(2):
        extraction = extractor.extract(PARSED, classified("letter"))
        assert extraction.fields == {"sender": "Ann"}
        assert extraction.schema_name == "generated/letter"
    assert len(api.calls("POST", "/api/v2/extract/schema/generate")) == 1  # cached per type
    prompt = json.loads(api.calls("POST", "/api/v2/extract/schema/generate")[0]["body"])["prompt"]
    assert "letter" in prompt and "Dear" in prompt  # the type's description from doc_types.yaml
    assert (
        json.loads(api.calls("POST", "/api/v2/extract")[-1]["body"])["configuration"]["data_schema"]
        == generated
    )


def test_llamaextract_429_then_success(api: FakeAPI) -> None:
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/extract", (429, {"detail": "slow down"}), (200, extract_job("PENDING")))
    api.script("GET", "/api/v2/extract/ext-1", (200, extract_job("COMPLETED", {"store_name": "Cafe"})))
    extraction = LlamaExtractor.from_settings(llama_settings(api)).extract(PARSED, classified("receipt"))
    assert extraction.fields == {"store_name": "Cafe"}
    assert len(api.calls("POST", "/api/v2/extract")) == 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [((503, {"detail": "down"}), BackendUnavailable), ((422, {"detail": "bad schema"}), RemoteError)],
)
def test_llamaextract_errors(api: FakeAPI, reply: tuple[int, Any], error: type) -> None:
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/extract", reply)
    with pytest.raises(error):
        LlamaExtractor.from_settings(llama_settings(api, remote_max_retries=0)).extract(
            PARSED, classified("invoice")
        )


def test_llamaextract_job_without_an_object_is_a_clear_error(api: FakeAPI) -> None:
    api.script("POST", "/api/v1/beta/files", (200, FILE))
    api.script("POST", "/api/v2/extract", (200, extract_job("PENDING")))
    api.script("GET", "/api/v2/extract/ext-1", (200, extract_job("COMPLETED", None)))
    with pytest.raises(RemoteError, match="no object"):
        LlamaExtractor.from_settings(llama_settings(api)).extract(PARSED, classified("invoice"))


def test_openai_extract_uses_the_type_schema(api: FakeAPI) -> None:
    answer = {"invoice_number": "INV-17", "total_amount": 1234.56, "currency": "EUR", "tax_rate": 250}
    api.script("POST", "/v1/chat/completions", (200, completion(json.dumps(answer))))
    extraction = OpenAIExtractor.from_settings(openai_settings(api)).extract(PARSED, classified("invoice"))
    assert extraction.fields == {"invoice_number": "INV-17", "total_amount": 1234.56, "currency": "EUR"}
    assert any(e.startswith("tax_rate") for e in extraction.validation_errors)
    assert extraction.backend == "openai/test-model"
    sent = json.loads(api.calls("POST", "/v1/chat/completions")[0]["body"])
    assert sent["response_format"]["type"] == "json_schema"
    assert "total_amount" in sent["response_format"]["json_schema"]["schema"]["properties"]
    assert "Invoice number: INV-17" in sent["messages"][-1]["content"]


def test_openai_extract_generates_a_schema_for_a_type_without_one(api: FakeAPI) -> None:
    fields = [
        {"name": "subject", "kind": "string", "description": "what the letter is about"},
        {"name": "sent_on", "kind": "date", "description": "the letter's date"},
        {"name": "not a name", "kind": "string", "description": "dropped: not an identifier"},
    ]
    api.script(
        "POST",
        "/v1/chat/completions",
        (200, completion(json.dumps({"fields": fields}))),
        (200, completion(json.dumps({"subject": "Rent", "sent_on": "2024-01-01"}))),
        (200, completion(json.dumps({"subject": "Keys", "sent_on": None}))),
    )
    extractor = OpenAIExtractor.from_settings(openai_settings(api))
    first = extractor.extract(PARSED, classified("letter"))
    assert first.fields == {"subject": "Rent", "sent_on": "2024-01-01"}
    assert first.schema_name == "generated/letter"
    second = extractor.extract(PARSED, classified("letter"))  # the schema is asked for once per type
    assert second.fields == {"subject": "Keys"}
    sent = [json.loads(c["body"]) for c in api.calls("POST", "/v1/chat/completions")]
    assert len(sent) == 3 and "letter" in sent[0]["messages"][0]["content"]
    schema = sent[1]["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == {"subject", "sent_on"} == set(schema["required"])
    assert sent[2]["response_format"]["json_schema"]["schema"] == schema


def test_openai_extract_429_then_success_and_errors(api: FakeAPI) -> None:
    api.script(
        "POST",
        "/v1/chat/completions",
        (429, {"error": {"message": "rate"}}),
        (200, completion('{"name": "Jane Doe", "email": "not-an-email"}')),
        (200, completion("Sorry, I cannot help")),
        (502, {"error": {"message": "bad gateway"}}),
    )
    extractor = OpenAIExtractor.from_settings(openai_settings(api, remote_max_retries=1))
    extraction = extractor.extract(PARSED, classified("resume"))
    assert extraction.fields == {"name": "Jane Doe"} and extraction.validation_errors
    with pytest.raises(RemoteError, match="did not answer JSON"):
        extractor.extract(PARSED, classified("resume"))
    with pytest.raises(BackendUnavailable, match="HTTP 502"):
        extractor.extract(PARSED, classified("resume"))


@pytest.mark.parametrize(
    ("kind", "env"), [("openai", "DOCFLOW_OPENAI_API_KEY"), ("llamacloud", "LLAMA_CLOUD")]
)
def test_missing_api_key_names_the_env_var(kind: str, env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from docflow.settings import Settings

    monkeypatch.delenv("DOCFLOW_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("DOCFLOW_LLAMA_CLOUD_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=env):
        get_extractor(Settings(extract_backend=kind, openai_api_key=None, llama_cloud_api_key=None))
    assert kind in EXTRACTORS
