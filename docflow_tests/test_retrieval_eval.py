"""The `retrieval` section of `docflow eval`: queries from truth fields, recall@5 and MRR, on real search."""

import uuid
from pathlib import Path

import pytest

from docflow import backends
from docflow.evaluation import Item
from docflow.evaluation.metrics import SECTIONS
from docflow.evaluation.retrieval import queries_for, retrieval_section, typed
from docflow.models import Chunk, Document
from docflow.pipeline import config_fingerprint


def _item(name: str, doc_type: str, fields: dict, doc_id: str = "") -> Item:
    return Item(Path(f"{name}.pdf"), doc_type, {"fields": fields}, None, doc_id or f"missing-{name}")


@pytest.mark.parametrize(
    ("doc_type", "fields", "expected"),
    [
        ("invoice", {"vendor_name": "OYO", "total_amount": 4.11}, [("vendor_name", "OYO")]),
        ("receipt", {"store_name": "Netlify, Inc"}, [("store_name", "Netlify, Inc")]),
        ("resume", {"name": "Byungjin Park", "email": "x@y"}, [("name", "Byungjin Park")]),
        (
            "contract",
            {
                "parties": [
                    "Marathon Petroleum Company LP",
                    "Shipper",
                    "MPL",
                    "Marathon Pipe Line LLC",
                    'both referred to jointly as the "Parties"',
                ]
            },
            [("parties", "Marathon Petroleum Company LP"), ("parties", "Marathon Pipe Line LLC")],
        ),
        ("contract", {"parties": ["Licensor", "Company", "Licensee"]}, []),  # aliases only: no query
        ("invoice", {"total_amount": 3}, []),
        ("form", {"key_values": {"a": "b"}}, []),
    ],
)
def test_queries_from_truth(doc_type: str, fields: dict, expected: list) -> None:
    assert queries_for(_item("x", doc_type, fields)) == expected


def test_registered_as_an_eval_section() -> None:
    assert SECTIONS["retrieval"] is retrieval_section


@pytest.fixture(scope="module")
def corpus(rt):
    embedder = backends.get_embedder(rt.settings)
    tenant = f"r{uuid.uuid4().hex[:6]}"
    docs = {
        "globex1": ("invoice", "Globex Industries GmbH. Invoice 118 for cloud hosting, total 980 EUR.",
                    {"vendor_name": "Globex Industries"}),
        "globex2": ("invoice", "GLOBEX INDUSTRIES invoice 119: support hours, total 120 EUR.",
                    {"vendor_name": "Globex Industries"}),
        "acme": ("invoice", "Acme Corp bills consulting services. Invoice INV-7.",
                 {"vendor_name": "Acme Corp"}),
        "contract": ("contract", "This licence agreement is made between Initech Corporation (Licensor) and "
                     "Umbrella Ltd.", {"parties": ["Initech Corporation", "Licensor"]}),
        "resume": ("resume", "Ada Lovelace. Mathematician. Experience: analytical engine programs.",
                   {"name": "Ada Lovelace"}),
    }  # fmt: skip
    items = []
    for name, (doc_type, text, fields) in docs.items():
        doc_id = f"{tenant}-{uuid.uuid4().hex}"
        rt.store.register(
            Document(doc_id=doc_id, tenant=tenant, bucket="b", key=name, sha256=doc_id, filename=name)
        )
        rt.store.ensure_vector_index(embedder.dimension)
        vectors = embedder.embed([text])
        rt.store.save_chunks(
            doc_id, [Chunk(index=0, text=text)], vectors, embedder.name, config_fingerprint(rt.settings)
        )
        items.append(_item(name, doc_type, fields, doc_id))
    yield tenant, items
    rt.store.delete_documents([i.doc_id for i in items])


def test_every_document_is_found_by_its_truth(rt, corpus) -> None:
    tenant, items = corpus
    report = retrieval_section(rt, items, tenant=tenant)
    assert report["n_queries"] == 5
    assert report["recall_at_5"] == 1.0 and report["mrr"] == 1.0, report["misses"]
    assert report["typed_recall_at_5"] == 1.0 and report["typed_mrr"] == 1.0, report["misses"]
    assert report["per_type"]["invoice"] == {
        "recall_at_5": 1.0, "mrr": 1.0, "typed_recall_at_5": 1.0, "typed_mrr": 1.0, "n": 3
    }  # fmt: skip


def test_chunks_grouped_by_document_score_the_same_corpus(rt, corpus) -> None:
    tenant, items = corpus
    report = retrieval_section(rt, items, tenant=tenant, chunks=True)
    assert report["n_queries"] == 5 and report["recall_at_5"] == 1.0, report["misses"]


def test_typed_query() -> None:
    assert typed(_item("x", "receipt", {}), "Corner Cafe") == "receipt Corner Cafe"
    assert typed(_item("x", "financial_statement", {}), "Acme") == "financial statement Acme"


def test_a_document_missing_from_the_index_is_a_miss(rt, corpus) -> None:
    tenant, items = corpus
    lost = _item("zeta", "invoice", {"vendor_name": "Zeta Holdings"})  # never processed
    report = retrieval_section(rt, [*items, lost], tenant=tenant)
    assert report["n_queries"] == 6
    assert report["recall_at_5"] == pytest.approx(5 / 6, abs=1e-4)
    assert report["typed_recall_at_5"] == pytest.approx(5 / 6, abs=1e-4)
    assert report["misses"] == [
        {"query": "Zeta Holdings", "typed": False, "field": "invoice.vendor_name", "expected": "zeta.pdf",
         "rank": None, "top5": report["misses"][0]["top5"]},
        {"query": "invoice Zeta Holdings", "typed": True, "field": "invoice.vendor_name",
         "expected": "zeta.pdf", "rank": None, "top5": report["misses"][1]["top5"]},
    ]  # fmt: skip
    assert len(report["misses"][0]["top5"]) == 5


def test_another_tenant_finds_nothing(rt, corpus) -> None:
    _, items = corpus
    report = retrieval_section(rt, items, tenant="no-such-tenant")
    assert report["recall_at_5"] == 0.0 and report["mrr"] == 0.0
    assert report["typed_recall_at_5"] == 0.0
