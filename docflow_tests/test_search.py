"""Hybrid search on the real embedded Postgres: filters, model isolation, the exact fallback, the CLI options.

Chunks are written with the store's own `save_chunks` and embedded with the real local model, so that
`docflow search` (which embeds the query with the configured model) finds them."""

import json
import math
import random
import uuid
from datetime import date

import pytest
from click.testing import CliRunner
from stored import add_document

from docflow import backends
from docflow.cli import cli
from docflow.retrieval import search, split_type_words, type_words
from docflow.store.db import _vector_literal
from docflow.store.search import (
    SearchFilters,
    _semantic,
    _semantic_sql,
    _wider_ef,
    exact_search,
    fuse_documents,
    hybrid_search,
    name_groups,
    name_weight,
    rrf,
    semantic_search,
    type_vector_index_name,
)

DOCS = {
    "acme": (
        "invoice",
        "Invoice INV-7 from Acme Corp for consulting services. Total due 120.50 EUR.",
        {"vendor_name": "Acme Corp", "total_amount": 120.5, "invoice_date": "2024-03-01"},
    ),
    "globex": (
        "invoice",
        "Invoice 2023-118 from Globex Industries for cloud hosting. Total due 980.00 USD.",
        {"vendor_name": "Globex Industries", "total_amount": 980, "invoice_date": "2023-06-15"},
    ),
    "contract": (
        "contract",
        "Service agreement between Acme Corp and Initech about consulting services and payment terms.",
        {"parties": ["Acme Corp", "Initech"], "agreement_date": "2022-01-10"},
    ),
    "receipt": (
        "receipt",
        "Receipt from Corner Cafe: two coffees and a bagel, card payment 9.40 EUR.",
        {"store_name": "Corner Cafe", "total": "9.40", "date": "not a date"},
    ),
}


def _add(
    rt, tenant: str, name: str, doc_type: str, texts: list[str], fields: dict, model: str, vectors
) -> str:
    metadata = {"doc_type": doc_type, "tenant": tenant, "fields": fields}
    return add_document(rt, tenant, name, texts, vectors, model, metadata)


@pytest.fixture(scope="module")
def corpus(rt):
    """Two tenants holding the same four documents, embedded with the configured (local) model."""
    embedder = backends.get_embedder(rt.settings)
    tenant, other = f"s{uuid.uuid4().hex[:6]}", f"s{uuid.uuid4().hex[:6]}"
    ids, all_ids = {}, []
    for t in (tenant, other):
        for name, (doc_type, text, fields) in DOCS.items():
            doc_id = _add(rt, t, name, doc_type, [text], fields, embedder.name, embedder.embed([text]))
            all_ids.append(doc_id)
            if t == tenant:
                ids[name] = doc_id
    yield tenant, other, ids
    rt.store.delete_documents(all_ids)


def _names(hits, ids) -> set[str]:
    by_id = {v: k for k, v in ids.items()}
    return {by_id.get(h.doc_id, "?") for h in hits}


def test_tenant_filter_keeps_tenants_apart(rt, corpus) -> None:
    tenant, other, ids = corpus
    hits = search(rt, "consulting invoice", k=20, tenant=tenant)
    assert {h.doc_id for h in hits} <= set(ids.values())
    assert _names(hits, ids) == set(DOCS)
    assert {h.doc_id for h in search(rt, "consulting invoice", k=20, tenant=other)}.isdisjoint(ids.values())


def test_best_hit_and_hit_fields(rt, corpus) -> None:
    tenant, _, ids = corpus
    hit = search(rt, "Globex cloud hosting", k=3, tenant=tenant)[0]
    assert hit.doc_id == ids["globex"] and hit.filename == "globex.pdf" and hit.doc_type == "invoice"
    assert hit.page_start == 1 and hit.score > 0 and "Globex" in hit.text


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"doc_type": "invoice"}, {"acme", "globex"}),
        ({"date_from": date(2024, 1, 1), "date_to": date(2024, 12, 31)}, {"acme"}),
        ({"date_to": date(2023, 12, 31)}, {"globex", "contract"}),  # the receipt's date is not a date
        ({"date_from": date.today()}, {"receipt"}),  # ... so it is dated by its registration
        ({"fields": {"vendor_name": "acme"}}, {"acme"}),
        ({"fields": {"vendor_name": "ACME corp", "invoice_date": "2024"}}, {"acme"}),
        ({"fields": {"parties": "initech"}}, {"contract"}),
        ({"fields": {"vendor_name": "%"}}, set()),  # LIKE wildcards are matched literally
        ({"amount_min": 100, "amount_max": 500}, {"acme"}),
        ({"amount_min": 500}, {"globex"}),
        ({"amount_max": 10}, {"receipt"}),  # "9.40" as text is a number too
        ({"doc_type": "invoice", "amount_max": 100}, set()),
    ],
)
def test_filters(rt, corpus, kwargs: dict, expected: set[str]) -> None:
    tenant, _, ids = corpus
    hits = search(rt, "invoice agreement receipt payment", k=20, tenant=tenant, **kwargs)
    assert _names(hits, ids) == expected


def test_a_word_in_no_chunk_does_not_hide_the_others(rt, corpus) -> None:
    """websearch_to_tsquery ANDs the words; when no chunk has them all, any of them is matched."""
    tenant, _, ids = corpus
    hits = search(rt, "Globex zzyzxunknownword", k=4, tenant=tenant)
    assert hits[0].doc_id == ids["globex"]


def test_other_models_are_never_searched(rt, corpus) -> None:
    tenant, _, _ = corpus
    vector = backends.get_embedder(rt.settings).embed(["consulting invoice"])[0]
    assert hybrid_search(rt.store, "consulting invoice", vector, "test/no-such-model", tenant=tenant) == []


def _unit(rng: random.Random, dim: int, near: list[float] | None = None, noise: float = 1.0) -> list[float]:
    v = [rng.gauss(0, 1) * noise + (near[i] if near else 0.0) for i in range(dim)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _crowd(rt, rng: random.Random, model: str, query: list[float], n: int) -> tuple[str, str]:
    """A tenant of its own with a document of `n` chunks all near `query`: they fill the HNSW candidates
    before any other tenant's chunk. Returns (tenant, doc_id)."""
    tenant = f"c{uuid.uuid4().hex[:6]}"
    texts = [f"crowd chunk {i}" for i in range(n)]
    vectors = [_unit(rng, len(query), query, 0.05) for _ in texts]
    return tenant, _add(rt, tenant, "crowd", "other", texts, {}, model, vectors)


def test_selective_filter_falls_back_to_exact_search(rt) -> None:
    """A crowd of chunks nearer to the query fills the HNSW candidates; a small tenant's chunks, far from the
    query, must still be found (pgvector < 0.8 filters only what the index returned)."""
    rng = random.Random(1)
    dim, model = 24, "test/fallback"
    query = _unit(rng, dim)
    crowd, many = _crowd(rt, rng, model, query, 300)
    small = f"f{uuid.uuid4().hex[:6]}"
    far = [[-x for x in query], _unit(rng, dim)]
    target = _add(rt, small, "small", "other", ["far away one", "far away two"], {}, model, far)
    try:
        hits = hybrid_search(rt.store, "", query, model, k=5, filters=SearchFilters(tenant=small))
        assert [(h.doc_id, h.chunk_index) for h in hits] == [(target, 1), (target, 0)]  # nearest first
        crowd_hits = hybrid_search(rt.store, "", query, model, k=5, filters=SearchFilters(tenant=crowd))
        assert len(crowd_hits) == 5
    finally:
        rt.store.delete_documents([many, target])


def test_semantic_retriever_under_a_selective_filter_returns_the_exact_answer(rt) -> None:
    """A small tenant behind a crowd nearer to the query: the semantic retriever must return exactly the true
    nearest chunks of the tenant, in order (exact_search itself checked against distances computed here)."""
    rng = random.Random(4)
    dim, model = 20, "test/exact"
    query = _unit(rng, dim)
    crowd, many = _crowd(rt, rng, model, query, 400)
    small = f"f{uuid.uuid4().hex[:6]}"
    vectors = [_unit(rng, dim) for _ in range(30)]
    target = _add(rt, small, "small", "other", [f"small {i}" for i in range(30)], {}, model, vectors)
    cosine = [sum(a * b for a, b in zip(v, query, strict=True)) for v in vectors]
    truth = [(target, i) for i in sorted(range(30), key=lambda i: -cosine[i])[:10]]
    try:
        flt = SearchFilters(tenant=small)
        assert exact_search(rt.store, query, model, flt, k=10) == truth
        found, strategy = semantic_search(rt.store, query, model, flt, candidates=10)
        assert found == truth
        assert strategy in {"exact", "index"}  # "index": the planner itself chose the tenant's rows
        # the first probe through the HNSW index, as at scale: the crowd fills it, the exact search answers
        where, params = flt.sql()
        params.update({"qvec": _vector_literal(query), "model": model, "candidates": 10})
        with rt.store.tx() as conn:
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            conn.execute("SET LOCAL enable_sort = off")
            found, strategy = _semantic(conn, dim, where, params, 10)
        assert (found, strategy) == (truth, "exact")
        found, strategy = semantic_search(rt.store, query, model, SearchFilters(tenant=crowd), candidates=10)
        assert strategy == "index" and len(found) == 10
    finally:
        rt.store.delete_documents([many, target])


def test_a_filter_passing_a_share_of_the_candidates_is_served_by_a_wider_probe(rt) -> None:
    """A filter passing 1 chunk in 4 leaves the first HNSW probe short; the wider probe sized from that share
    (or the exact search) must still return the filter's nearest chunks, nearest first."""
    rng = random.Random(2)
    dim, model = 16, "test/wider"
    query = _unit(rng, dim)
    tenant = f"w{uuid.uuid4().hex[:6]}"
    doc_ids: list[str] = []
    wanted: set[tuple[str, int]] = set()
    for doc_type in ("invoice", "contract", "receipt", "report"):
        vectors = [_unit(rng, dim, query, 0.3) for _ in range(60)]
        texts = [f"{doc_type} {i}" for i in range(60)]
        doc_id = _add(rt, tenant, doc_type, doc_type, texts, {}, model, vectors)
        doc_ids.append(doc_id)
        if doc_type == "invoice":
            cosine = [sum(a * b for a, b in zip(v, query, strict=True)) for v in vectors]
            wanted = {(doc_id, i) for i in sorted(range(60), key=lambda i: -cosine[i])[:5]}
    try:
        flt = SearchFilters(tenant=tenant, doc_type="invoice")
        hits = hybrid_search(rt.store, "", query, model, k=5, filters=flt)
        assert {(h.doc_id, h.chunk_index) for h in hits} == wanted
    finally:
        rt.store.delete_documents(doc_ids)


@pytest.mark.parametrize(
    ("ef", "passed", "wanted", "expected"),
    [
        (100, 13, 50, 577),  # 13% pass: 50 / 0.13 with a margin
        (100, 40, 50, 188),
        (100, 49, 50, 154),
        (100, 9, 50, 834),
        (100, 5, 50, 1000),  # capped at pgvector's maximum, still worth a try
        (100, 2, 50, None),  # even 1000 would not do: exact search
        (100, 0, 50, None),  # no estimate: exact search
        (1000, 30, 50, None),  # the maximum was already tried
    ],
)
def test_wider_ef(ef: int, passed: int, wanted: int, expected: int | None) -> None:
    assert _wider_ef(ef, passed, wanted) == expected


@pytest.mark.parametrize(
    ("rankings", "expected"),
    [
        ([[("a", 0), ("b", 0)], [("b", 0), ("a", 0)]], [("a", 0), ("b", 0)]),  # a tie: ordered by key
        ([[("a", 0), ("b", 0)], [("b", 0)]], [("b", 0), ("a", 0)]),
        ([[], [("c", 1)]], [("c", 1)]),
    ],
)
def test_rrf(rankings, expected) -> None:
    fused = rrf(*rankings)
    assert [key for key, _ in fused] == expected
    assert all(score <= 2 / 61 for _, score in fused)


def test_no_filters_means_no_sql() -> None:
    assert SearchFilters().sql() == ("", {})


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_search_filters(corpus) -> None:
    tenant, _, ids = corpus
    base = ["search", "invoice", "--tenant", tenant, "--json", "--k", "10"]
    vendor = json.loads(_cli(*base, "--vendor", "globex").stdout)
    assert [h["doc_id"] for h in vendor] == [ids["globex"]]
    dated = json.loads(_cli(*base, "--from", "2022-01-01", "--to", "2022-12-31").stdout)
    assert [h["doc_id"] for h in dated] == [ids["contract"]]
    amount = json.loads(_cli(*base, "--amount-min", "100", "--field", "vendor_name=acme").stdout)
    assert [h["doc_id"] for h in amount] == [ids["acme"]]
    bad = CliRunner().invoke(cli, [*base, "--field", "novalue"])
    assert bad.exit_code != 0 and "NAME=TEXT" in bad.output


def test_search_applies_the_configured_reranker(rt, corpus) -> None:
    from openai_stub import StubServer

    from docflow.pipeline import Runtime

    tenant, _, ids = corpus
    with StubServer() as (stub, base_url):
        settings = rt.settings.model_copy(update={"rerank": "api", "rerank_url": f"{base_url}/rerank"})
        reranked = Runtime(rt.store, rt.bucket, settings)
        hits = search(reranked, "Corner Cafe card payment coffees", k=2, tenant=tenant)
        plain = search(reranked, "Corner Cafe card payment coffees", k=2, tenant=tenant, rerank=False)
        assert len(stub.calls("/rerank")) == 1
    assert len(stub.calls("/rerank")[0].body["documents"]) == 4  # the candidates, not just k
    assert hits[0].doc_id == ids["receipt"] and hits[0].score == 5.0  # the stub's word-overlap score
    assert plain[0].score < 1


# --- by document, names as OCR reads them, words naming a type ----------------------------------------------


CLAUSE = "Clause {i}. The supplier delivers stationery supplies and office paper to the buyer every month."


@pytest.fixture(scope="module")
def named(rt):
    """A long contract whose every chunk is about stationery supplies, receipts and an invoice of stationers
    (one store name as OCR read it: digits for letters, words run together)."""
    embedder = backends.get_embedder(rt.settings)
    tenant = f"n{uuid.uuid4().hex[:6]}"
    docs = {
        "contract": ("contract", [CLAUSE.format(i=i) for i in range(8)],
                     {"parties": ["Initech Corporation", "Paper Mills Ltd"]}),
        "sanyu": ("receipt", ["SANYUSTATI0NERY SH0P C0.\nNo. 31 Jalan Besar\n2 pens 3.00 total 3.00"],
                  {"store_name": "SANYUSTATI0NERY SH0P C0."}),
        "cafe": ("receipt", ["Corner Cafe\ntwo coffees 6.00 total 6.00"], {"store_name": "Corner Cafe"}),
        "supplies": ("invoice", ["Invoice 44 from Corner Stationery Supplies: pens and paper, total 80.00"],
                     {"vendor_name": "Corner Stationery Supplies"}),
    }  # fmt: skip
    ids = {}
    for name, (doc_type, texts, fields) in docs.items():
        ids[name] = _add(rt, tenant, name, doc_type, texts, fields, embedder.name, embedder.embed(texts))
    yield tenant, ids
    rt.store.delete_documents(list(ids.values()))


def test_one_hit_per_document_unless_chunks_are_asked_for(rt, named) -> None:
    tenant, ids = named
    docs = search(rt, "stationery supplies delivered every month", k=10, tenant=tenant)
    assert len({h.doc_id for h in docs}) == len(docs) == 4
    assert docs[0].doc_id == ids["contract"] and docs[0].score > docs[1].score
    chunks = search(rt, "stationery supplies delivered every month", k=10, tenant=tenant, chunks=True)
    assert [h.doc_id for h in chunks[:8]] == [ids["contract"]] * 8  # the long file crowds out the others


@pytest.mark.parametrize("query", ["San Yu Stationery", "sanyu stationery shop", "SAN YU STATIONERY CO"])
def test_a_name_as_ocr_read_it_is_found(rt, named, query: str) -> None:
    tenant, ids = named
    assert search(rt, query, k=3, tenant=tenant)[0].doc_id == ids["sanyu"]


def test_name_key_forgives_ocr_digits_spacing_and_legal_forms(rt) -> None:
    with rt.store.tx() as conn:
        row = conn.execute(
            "SELECT docflow.name_key('SANYUSTATI0NERY SH0P C0.') AS a, docflow.name_key('San Yu Stationery "
            "Shop Co') AS b, docflow.name_key('Sdn. Bhd.') AS c, docflow.name_trigrams('ab') AS t"
        ).fetchone()
    assert row["a"] == row["b"] == "sanyustationeryshop"
    assert row["c"] == "" and sorted(row["t"]) == ["  a", " ab", "ab "]


@pytest.mark.parametrize(("query", "first"), [("receipt corner", "cafe"), ("invoice corner", "supplies")])
def test_a_word_naming_a_type_favours_documents_of_that_type(rt, named, query: str, first: str) -> None:
    tenant, ids = named
    hits = search(rt, query, k=4, tenant=tenant)
    assert hits[0].doc_id == ids[first]
    assert {h.doc_id for h in hits[:2]} == {ids["cafe"], ids["supplies"]}  # the name still counts


def test_split_type_words() -> None:
    words = type_words()
    assert split_type_words("receipt SAN YU", words) == ("SAN YU", ["receipt"])
    assert split_type_words("Invoices from Acme", words) == ("from Acme", ["invoice"])
    assert split_type_words("license agreement acme", words) == ("license agreement acme", ["contract"])
    assert split_type_words("invoice", words) == ("invoice", ["invoice"])  # nothing else: kept
    assert split_type_words("e-invoice data", words) == ("e-invoice data", [])


def test_name_groups_cover_every_set_holding_enough_trigrams() -> None:
    rng = random.Random(1)
    for _ in range(200):
        trigrams = [f"t{i:02d}" for i in range(rng.randint(1, 30))]
        need = rng.randint(1, len(trigrams))
        groups = name_groups(trigrams, need)
        assert sorted(t for g in groups for t in g) == sorted(trigrams)
        held = set(rng.sample(trigrams, need))
        assert any(set(g) <= held for g in groups)


def test_fuse_documents() -> None:
    semantic = [("a", 3), ("a", 1), ("b", 0)]
    lexical = [("b", 2), ("a", 1)]
    fused = fuse_documents(semantic, lexical, [("c", 1.0), ("b", 0.75)])
    # each document as its best chunk; one found by its name only, as its first chunk
    assert [key for key, _ in fused] == [("b", 2), ("c", 0), ("a", 1)]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61 + 1 / 62)  # a name holding 3/4: half the weight
    assert dict(fused)[("c", 0)] == pytest.approx(2 / 61)  # a whole name: twice a place in a chunk ranking
    boosted = fuse_documents(semantic, lexical, [("c", 1.0)], {"c": "receipt"}, ["receipt"])
    assert dict(boosted)[("c", 0)] == pytest.approx(1.25 * 2 / 61)


@pytest.mark.parametrize(("share", "weight"), [(1.0, 2.0), (0.75, 1.0), (0.5, 0.0), (0.2, 0.0)])
def test_name_weight(share: float, weight: float) -> None:
    assert name_weight(share) == pytest.approx(weight)


def test_cli_search_chunks_keeps_the_json_keys(named) -> None:
    tenant, _ = named
    base = ["search", "stationery supplies every month", "--tenant", tenant, "--json", "--k", "5"]
    docs, chunks = json.loads(_cli(*base).stdout), json.loads(_cli(*base, "--chunks").stdout)
    keys = {"doc_id", "key", "filename", "doc_type", "chunk_index", "score", "text"}
    assert all(set(h) == keys for h in docs + chunks)
    assert len({h["doc_id"] for h in docs}) == len(docs) and len({h["doc_id"] for h in chunks}) < len(chunks)


def test_search_bench_loads_skewed_tenants_and_measures_every_filter_class(rt, monkeypatch) -> None:
    """The bench's loader (binary COPY in blocks) and measurement at toy scale: tenants get their shares of
    the chunks, every filter class is measured, an exact-served class has recall 1, the rows are removed."""
    from docflow.bench import search as bench
    from docflow.store import bulk

    monkeypatch.setattr(bench, "BASES_PER_TEMPLATE", 3)  # few base texts to embed
    monkeypatch.setattr(bench, "BLOCK_CHUNKS", 700)  # several COPY blocks
    embedder = backends.get_embedder(rt.settings)
    result = bench.search_latency(
        rt, embedder, n_chunks=3000, n_queries=2, n_recall=2, keep=False, progress=lambda _: None
    )
    by_filter = result["by_filter"]
    assert set(by_filter) == set(bench.filter_classes())
    matching = {name: v["matching_chunks"] for name, v in by_filter.items()}
    assert (matching["none"], matching["tenant_large"], matching["tenant_small"]) == (3000, 1800, 15)
    assert 0 < matching["tenant_type_amount"] < matching["tenant_large"]
    assert 0 < matching["tenant_date"] < 450  # a year of the medium tenant's 450
    assert by_filter["tenant_small"]["recall_at_10"] == 1.0
    assert all(v["hybrid"]["n"] == 2 and v["queries_with_hits"] == 2 for v in by_filter.values())
    assert bulk.count_model_chunks(rt.store, f"bench/{embedder.name}") == 0


def test_a_type_filtered_search_probes_the_types_own_index(rt) -> None:
    """Contracts nearer to the query crowd the whole table's HNSW probe; with a partial index of the invoices
    (bulk.build_vector_index's doc_type), a search filtered on invoices probes that index, whose first probe
    already holds the invoices' true nearest chunks; a search without the type never reads it."""
    from docflow.store import bulk

    rng = random.Random(6)
    dim, model = 18, "test/typeindex"
    query = _unit(rng, dim)
    tenant = f"t{uuid.uuid4().hex[:6]}"
    crowd = [_unit(rng, dim, query, 0.05) for _ in range(300)]
    invoices = [_unit(rng, dim, query, 1.0) for _ in range(60)]
    doc_ids = [
        _add(rt, tenant, "crowd", "contract", [f"c {i}" for i in range(300)], {}, model, crowd),
        _add(rt, tenant, "inv", "invoice", [f"i {i}" for i in range(60)], {}, model, invoices),
    ]
    rt.store.ensure_vector_index(dim)
    index = type_vector_index_name(dim, "invoice")
    flt = SearchFilters(doc_type="invoice")  # the model's chunks are this test's alone
    where, params = flt.sql()
    params.update({"qvec": _vector_literal(query), "model": model, "candidates": 10})

    def probe() -> tuple[list, str, str]:
        with rt.store.tx() as conn:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # the index, as at scale
                conn.execute(f"SET LOCAL {setting} = off")
            found, strategy = _semantic(conn, dim, where, params, 10)
            plan = conn.execute("EXPLAIN " + _semantic_sql(dim, where, exact=False), params).fetchall()
        return found, strategy, str(plan)

    try:
        truth = exact_search(rt.store, query, model, flt, k=10)
        assert {d for d, _ in truth} == {doc_ids[1]}
        found, strategy, _ = probe()
        assert found == truth and strategy != "index"  # the crowd filled the whole table's first probe
        bulk.build_vector_index(rt.store, dim, doc_type="invoice")
        found, strategy, untyped_plan = probe()
        assert (found, strategy) == (truth, "index")
        assert f"chunks_embedding_{dim} " in untyped_plan and index not in untyped_plan
        with rt.store.tx() as conn:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.execute(f"SET LOCAL {setting} = off")
            plan = conn.execute("EXPLAIN " + _semantic_sql(dim, where, exact=False, typed=True), params)
            assert index in str(plan.fetchall())
    finally:
        with rt.store.tx() as conn:
            conn.execute(f"DROP INDEX IF EXISTS docflow.{index}")
        rt.store.delete_documents(doc_ids)


def test_bench_vectors_vary_in_few_directions_unlike_isotropic_noise() -> None:
    """The search bench's generator (span_vectors) keeps the local intrinsic dimensionality of a set near its
    few directions, where Gaussian noise in every dimension fills them all; the statistic itself finds a
    plane's dimension."""
    import numpy as np

    from docflow.bench import search as bench

    rng = np.random.default_rng(0)
    dim = 64
    bases = rng.normal(size=(8, dim)).astype(np.float32)
    bases /= np.linalg.norm(bases, axis=1, keepdims=True)
    plane = rng.normal(size=(2, dim))
    flat = rng.normal(size=(1500, 2)) @ plane + 5 * rng.normal(size=dim)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    assert 1.5 < bench.neighbourhood_stats(flat)["lid_mle"] < 2.6
    spans = rng.integers(0, len(bases), (1500, bench.SPAN_BASES + 1))
    spanned = bench.span_vectors(bases, spans, rng)
    assert np.allclose(np.linalg.norm(spanned, axis=1), 1.0, atol=1e-5)
    noisy = bases[spans[:, 0]] + rng.normal(0, 0.5 / dim**0.5, (1500, dim))
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    lid_spanned = bench.neighbourhood_stats(spanned)["lid_mle"]
    lid_noisy = bench.neighbourhood_stats(noisy)["lid_mle"]
    assert lid_spanned < lid_noisy / 2


def test_full_text_pool_never_walks_an_index_with_the_words_as_a_filter(rt) -> None:
    """Words found only in a tenant's chunks of one type (last in the tenant + type index's order): under its
    LIMIT the full-text statement must not walk an index in order filtering by the words (at a million chunks
    it read 480k of a tenant's rows for 200 matches); bitmap scans only."""
    from docflow.store import bulk
    from docflow.store.search import _ANY_WORD, _LEXICAL_SQL, _lexical

    tenant, model = f"x{uuid.uuid4().hex[:6]}", "test/lexical"
    rng = random.Random(9)
    filler = [f"plain filler sentence number {i} about nothing" for i in range(3000)]
    rare = [f"zebrafinch quarterly note {i}" for i in range(30)]
    doc_ids = [
        _add(rt, tenant, "a", "a_contract", filler, {}, model, [_unit(rng, 8) for _ in filler]),
        _add(rt, tenant, "z", "z_report", rare, {}, model, [_unit(rng, 8) for _ in rare]),
    ]
    bulk.vacuum_analyze(rt.store)
    where, params = SearchFilters(tenant=tenant).sql()
    params.update({"model": model, "query": "zebrafinch kangaroo", "candidates": 20, "pool": 200})
    try:
        with rt.store.tx() as conn:
            found = _lexical(conn, where, params)  # no chunk holds both words: any of them
            plan = conn.execute(
                "EXPLAIN " + _LEXICAL_SQL.format(tsquery=_ANY_WORD, filters=where), params
            ).fetchall()
        assert len(found) == 20 and {d for d, _ in found} == {doc_ids[1]}
        scans = [r["QUERY PLAN"] for r in plan if "Scan" in r["QUERY PLAN"]]
        assert scans and all("Bitmap" in line or "Subquery" in line for line in scans), scans
    finally:
        rt.store.delete_documents(doc_ids)


def test_docflow_vector_index_builds_the_index_a_search_of_that_type_probes(rt) -> None:
    """The operator's way to the per-type index: `docflow vector-index --type T` builds it for the configured
    embedder's dimension, under the name the search looks for; no other type's."""
    from docflow.store.search import _type_index

    doc_type = f"t{uuid.uuid4().hex[:6]}"
    dim = backends.get_embedder(rt.settings).dimension
    name = _type_index(dim, doc_type)
    result = CliRunner().invoke(cli, ["vector-index", "--type", doc_type], catch_exceptions=False)
    try:
        assert result.exit_code == 0 and f"{doc_type}: built" in result.output
        exists = "SELECT to_regclass(%s) IS NOT NULL AS r"
        with rt.store.tx() as conn:
            assert conn.execute(exists, (name,)).fetchone()["r"]
            assert not conn.execute(exists, (_type_index(dim, "other"),)).fetchone()["r"]
    finally:
        with rt.store.tx() as conn:
            conn.execute(f"DROP INDEX IF EXISTS {name}")


def test_the_chunk_date_function_reads_date_fields_in_their_order(rt) -> None:
    """docflow.chunk_date (migration 0018) and store.search.DATE_FIELDS must name the same fields in the same
    order: the first of them holding an ISO date is the chunk's document date."""
    from docflow.store.search import DATE_FIELDS

    dates = {name: f"20{10 + i:02d}-01-02" for i, name in enumerate(DATE_FIELDS)}
    with rt.store.tx() as conn:

        def chunk_date(fields: dict) -> str | None:
            metadata = json.dumps({"fields": fields})
            return conn.execute("SELECT docflow.chunk_date(%s::jsonb) AS d", (metadata,)).fetchone()["d"]

        for i, name in enumerate(DATE_FIELDS):
            later = {n: dates[n] for n in DATE_FIELDS[i:]}
            assert chunk_date({**later, "due_date": "1999-01-01"}) == dates[name], name
        assert chunk_date({"due_date": "2020-01-01", "date": "not a date"}) is None
