"""`ask`: extractive without an LLM; with one (a local server speaking the chat completions API, the real
`openai` client) a grounded answer citing (doc, page), or a fallback when the LLM does not cite."""

import re
import uuid

import pytest
from openai_stub import StubServer
from pydantic import SecretStr
from stored import add_document

from docflow import backends
from docflow.pipeline import Runtime
from docflow.retrieval import NO_PASSAGES, NOT_IN_SOURCES, ask, cite, cited_numbers

TEXTS = {
    "globex": [
        "Invoice 2023-118 from Globex Industries for cloud hosting.",
        "Total due 980.00 USD by July 15.",
    ],
    "acme": ["Invoice INV-7 from Acme Corp for consulting services. Total due 120.50 EUR."],
    "cafe": ["Receipt from Corner Cafe: two coffees and a bagel, card payment 9.40 EUR."],
}


@pytest.fixture(scope="module")
def tenant(rt) -> str:
    embedder = backends.get_embedder(rt.settings)
    tenant = f"a{uuid.uuid4().hex[:6]}"
    ids = [
        add_document(rt, tenant, name, texts, embedder.embed(texts), embedder.name)
        for name, texts in TEXTS.items()
    ]
    yield tenant
    rt.store.delete_documents(ids)


@pytest.fixture
def llm(rt):
    with StubServer() as (stub, base_url):
        settings = rt.settings.model_copy(
            update={
                "openai_api_key": SecretStr("sk-test"),
                "openai_base_url": base_url,
                "openai_model": "stub-llm",
            }
        )
        yield stub, Runtime(rt.store, rt.bucket, settings)


def _passage_number(messages: list[dict[str, str]], needle: str) -> int:
    """The [n] of the passage containing `needle` in the prompt docflow sent."""
    for block in messages[-1]["content"].split("\n\n"):
        match = re.match(r"\[(\d+)\] \(", block)
        if match and needle in block:
            return int(match.group(1))
    raise AssertionError(f"{needle!r} not among the passages")


def test_without_an_llm_the_answer_is_extractive_with_sources(rt, tenant) -> None:
    answer = ask(rt, "How much is due to Globex?", tenant=tenant)
    assert answer.extractive is True
    assert answer.answer.startswith("Extractive answer")
    assert "globex.pdf" in {s.filename for s in answer.sources} and len(answer.sources) <= 3
    assert "(globex.pdf, p. " in answer.answer  # every passage carries its (doc, page)


def test_llm_answer_is_grounded_and_cites_doc_and_page(llm, tenant) -> None:
    stub, rt = llm
    stub.chat_reply = lambda m: f"Globex is owed 980.00 USD [{_passage_number(m, '980.00')}]."
    answer = ask(rt, "How much is due to Globex?", tenant=tenant)
    assert answer.extractive is False
    assert answer.answer == "Globex is owed 980.00 USD (globex.pdf, p. 2)."
    assert [(s.filename, s.page_start) for s in answer.sources] == [("globex.pdf", 2)]
    request = stub.calls("/chat/completions")[0]
    assert request.body["model"] == "stub-llm" and request.headers["authorization"] == "Bearer sk-test"
    system, user = request.body["messages"]
    assert "ONLY the numbered passages" in system["content"] and NOT_IN_SOURCES in system["content"]
    assert "Question: How much is due to Globex?" in user["content"]


def test_several_citations_become_several_sources(llm, tenant) -> None:
    stub, rt = llm
    stub.chat_reply = lambda m: (
        f"Globex bills cloud hosting [{_passage_number(m, 'hosting')}] and Acme consulting "
        f"[{_passage_number(m, 'Acme')}, {_passage_number(m, 'hosting')}]."
    )
    answer = ask(rt, "What do the invoices bill?", tenant=tenant, k=5)
    assert not answer.extractive
    assert [s.filename for s in answer.sources] == ["globex.pdf", "acme.pdf"]
    assert "(acme.pdf, p. 1) (globex.pdf, p. 1)" in answer.answer


@pytest.mark.parametrize(
    ("reply", "note"),
    [
        ("Globex is owed 980 USD.", "cited no passage"),
        ("Globex is owed 980 USD [42].", "cited no passage"),  # a passage it was not given
        (NOT_IN_SOURCES, "found no answer"),
        ("", "found no answer"),
    ],
)
def test_an_llm_answer_without_valid_citations_is_not_returned(llm, tenant, reply: str, note: str) -> None:
    stub, rt = llm
    stub.chat_reply = lambda m: reply
    answer = ask(rt, "How much is due to Globex?", tenant=tenant)
    assert answer.extractive is True and answer.sources
    assert note in answer.answer and "(globex.pdf, p. " in answer.answer
    assert len(stub.calls("/chat/completions")) == 1


def test_no_passages_no_answer_and_no_llm_call(llm) -> None:
    stub, rt = llm
    answer = ask(rt, "How much is due to Globex?", tenant="no-such-tenant")
    assert (answer.answer, answer.sources, answer.extractive) == (NO_PASSAGES, [], True)
    assert stub.calls("/chat/completions") == []


def test_ask_backend_extractive_never_calls_the_llm(llm, tenant) -> None:
    stub, rt = llm
    rt = Runtime(rt.store, rt.bucket, rt.settings.model_copy(update={"ask_backend": "extractive"}))
    assert ask(rt, "How much is due to Globex?", tenant=tenant).extractive
    assert stub.calls("/chat/completions") == []


def test_llm_rate_limit_is_retried(llm, tenant) -> None:
    stub, rt = llm
    stub.fail("/chat/completions", 429, {"retry-after-ms": "100"})
    stub.chat_reply = lambda m: f"980.00 USD [{_passage_number(m, '980.00')}]"
    assert not ask(rt, "How much is due to Globex?", tenant=tenant).extractive
    assert len(stub.calls("/chat/completions")) == 2


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("a [1] b [2, 3] c [1]", 3, [1, 2, 3]),
        ("[4] [0] [2]", 3, [2]),
        ("no citation", 3, []),
        ("[1,2]", 1, [1]),
    ],
)
def test_cited_numbers(text: str, n: int, expected: list[int]) -> None:
    assert cited_numbers(text, n) == expected


def test_cite_formats_page_ranges() -> None:
    from docflow.models import SearchHit

    hit = SearchHit(doc_id="d", key="k", filename="f.pdf", doc_type=None, chunk_index=0, score=1, text="t")
    assert cite(hit) == "(f.pdf)"
    assert cite(hit.model_copy(update={"page_start": 2, "page_end": 2})) == "(f.pdf, p. 2)"
    assert cite(hit.model_copy(update={"page_start": 2, "page_end": 4})) == "(f.pdf, pp. 2-4)"
