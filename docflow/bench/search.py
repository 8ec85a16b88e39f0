"""`docflow bench --only search`: hybrid search latency at 100k chunks and embedding throughput.

Search: synthetic chunk rows are bulk-loaded with COPY into `docflow.chunks` (and their documents into
`docflow.documents`) in the tenant `bench-search`, under the embedding model name `bench/<embedder name>` so
that no real search (which filters on its own model) ever sees them. Texts are templated business prose
(invoices, contracts, reports with vendor names, amounts and dates); vectors are "random but realistic": the
real embeddings of a few hundred base texts, each copied with Gaussian noise (cosine about 0.9 to its base),
so the HNSW graph sees clustered data like real documents rather than uniform noise. Then `queries` hybrid
queries (real query embeddings, tenant filter; a share also with doc type and amount filters) run through
`docflow.store.search.hybrid_search` by document — the same code `docflow search` uses — and their latency is
reported (p50/p95/mean, ms; the query embedding is timed apart). The rows are deleted afterwards unless
`extra["keep_search_rows"]` (a later run reuses rows of the same size).

Embedding throughput: the same chunk texts embedded through docflow's embedder (`get_embedder().embed`) and
with the same sentence-transformers model called directly in a plain loop of batches; best of `rounds`, ratio
docflow / plain (target >= 0.9).
"""

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from docflow.bench import BenchOptions
from docflow.settings import Settings
from docflow.store import bulk

BENCH_TENANT = "bench-search"
CHUNKS_PER_DOC = 50
VENDORS = [
    "Northwind Traders", "Acme Corporation", "Globex Industries", "Initech Solutions", "Umbrella Logistics",
    "Stark Components", "Wayne Enterprises", "Contoso Pharmaceuticals", "Fabrikam Textiles", "Tailspin Toys",
    "Blue Yonder Airlines", "Litware Software", "Adventure Works Cycles", "Proseware Analytics",
    "Woodgrove Bank", "Coho Winery", "Lucerne Publishing", "Margie's Travel", "Alpine Ski House",
    "Trey Research", "Wide World Importers", "Fourth Coffee", "Graphic Design Institute", "Humongous Co",
    "VanArsdel Foods", "Relecloud Media", "Southridge Video", "Datum Corporation", "Bellows College",
    "Munson's Pickles",
]  # fmt: skip
ITEMS = [
    "consulting services", "cloud hosting", "software licences", "office furniture", "freight charges",
    "maintenance contract", "laptop computers", "marketing campaign", "legal advice", "catering services",
    "network equipment", "training workshop", "data storage", "security audit", "printing supplies",
]  # fmt: skip
TEMPLATES = {
    "invoice": [
        "Invoice {num} from {vendor}. Invoice date {date}. Bill to {other}. {qty} x {item} at {price} EUR. "
        "Subtotal {sub} EUR, VAT 20% {vat} EUR, total amount due {total} EUR. Payment terms: net 30 days.",
        "{vendor} | Invoice number {num} | Due date {date} | Description: {item} | Quantity {qty} | "
        "Unit price {price} | Amount {total} USD. Please pay by bank transfer to IBAN DE89 3704 0044.",
    ],
    "contract": [
        "This {item} agreement is entered into as of {date} by and between {vendor} and {other}. The term "
        "of this agreement shall be twelve months and renew automatically unless terminated in writing.",
        "Section {qty}. Termination. Either party may terminate this agreement with {qty} days written "
        "notice. {vendor} shall indemnify {other} against claims arising from the {item}.",
    ],
    "report": [
        "Quarterly report of {vendor}: revenue grew to {total} thousand EUR, driven by {item}. Operating "
        "costs fell by {qty} percent compared with the previous quarter ending {date}.",
        "Summary of findings. The {item} review at {vendor} found {qty} open issues; management expects to "
        "resolve them before {date}. Budget impact is estimated at {total} EUR.",
    ],
    "receipt": [
        "Receipt {num}. {vendor}, Main Street {qty}. {date}. {item} {price}. Card payment total {total} EUR. "
        "Thank you for your visit.",
    ],
}
QUERY_TEMPLATES = [
    "{vendor} invoice",
    "total amount due for {item}",
    "agreement between {vendor} and {other}",
    "termination notice period",
    "{item} from {vendor}",
    "quarterly revenue growth",
    "payment terms net 30 days",
    "receipt card payment {vendor}",
]


def _fill(template: str, rng: random.Random) -> dict[str, Any]:
    vendor, other = rng.sample(VENDORS, 2)
    qty, price = rng.randint(1, 90), round(rng.uniform(5, 900), 2)
    total = round(qty * price * 1.2, 2)
    values = {
        "vendor": vendor,
        "other": other,
        "item": rng.choice(ITEMS),
        "num": f"INV-{rng.randint(2019, 2025)}-{rng.randint(1, 9999):04d}",
        "date": f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "qty": qty,
        "price": price,
        "sub": round(qty * price, 2),
        "vat": round(qty * price * 0.2, 2),
        "total": total,
    }
    return {"text": template.format(**values), **values}


def _synthetic_rows(n_chunks: int, base_vectors, bases: list[dict[str, Any]], model: str, seed: int):
    """(documents, chunks) as COPY text rows; vectors are noisy copies of the bases' real embeddings."""
    import numpy as np

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    dim = base_vectors.shape[1]
    sigma = 0.5 / dim**0.5  # noise of norm ~0.5 on a unit vector: cosine ~0.9 to the base
    n_docs = max(1, n_chunks // CHUNKS_PER_DOC)
    docs, chunks = [], []
    for d in range(n_docs):
        doc_id = f"{BENCH_TENANT}-{d:032x}"
        doc_type = rng.choice(list(TEMPLATES))
        first = bases[rng.randrange(len(bases))]
        fields = {
            "vendor_name": first["vendor"],
            "total_amount": first["total"],
            "invoice_date": first["date"],
        }
        docs.append((doc_id, BENCH_TENANT, "bench", f"bench/{doc_id}.pdf", f"{d:064x}", f"{doc_id}.pdf"))
        metadata = json.dumps({"doc_type": doc_type, "tenant": BENCH_TENANT, "fields": fields})
        picks = nrng.integers(0, len(bases), CHUNKS_PER_DOC)
        noisy = base_vectors[picks] + nrng.normal(0.0, sigma, (CHUNKS_PER_DOC, dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        for i, (pick, vector) in enumerate(zip(picks, noisy, strict=True)):
            if len(chunks) >= n_chunks:
                break
            text = f"{bases[pick]['text']} Ref {rng.randint(1000, 99999)}."
            vec = "[" + ",".join(f"{x:.5f}" for x in vector.tolist()) + "]"
            chunks.append((doc_id, i, text, "{}", 1, 1, len(text.split()), metadata, model, vec))
    return docs, chunks


def _load(rt, n_chunks: int, embedder, model: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """Bulk-load the synthetic rows (reusing a previous run's rows of the same size); returns timings."""
    import numpy as np

    have = bulk.count_model_chunks(rt.store, model)
    if have == n_chunks:
        progress(f"search bench: reusing {have} synthetic chunks")
        return {"reused": True}
    _cleanup(rt, model, embedder.dimension)
    rng = random.Random(7)
    bases = [_fill(t, rng) for _ in range(60) for templates in TEMPLATES.values() for t in templates]
    started = time.perf_counter()
    base_vectors = np.asarray(embedder.embed([b["text"] for b in bases]), dtype=np.float32)
    docs, chunks = _synthetic_rows(n_chunks, base_vectors, bases, model, seed=11)
    generated = time.perf_counter()
    dim = base_vectors.shape[1]
    progress(f"search bench: COPY {len(chunks)} chunks of {len(docs)} documents...")
    # Inserting 100k rows one by one into a live HNSW graph takes far longer than building the graph once:
    # drop the dimension's index, COPY, rebuild (searches meanwhile stay correct, just exact and slower).
    bulk.drop_vector_index(rt.store, dim)
    bulk.copy_documents_and_chunks(rt.store, ((*row, "done") for row in docs), chunks)
    copied = time.perf_counter()
    progress("search bench: building the HNSW index...")
    bulk.build_vector_index(rt.store, dim)
    loaded = time.perf_counter()
    bulk.analyze(rt.store)
    return {
        "reused": False,
        "generate_s": round(generated - started, 2),
        "copy_s": round(copied - generated, 2),
        "copy_rows_per_s": round(len(chunks) / max(copied - generated, 1e-9)),
        "index_build_s": round(loaded - copied, 2),
    }


def _cleanup(rt, model: str, dim: int) -> None:
    """Remove the synthetic rows; the index is rebuilt rather than left with 100k dead entries."""
    if not bulk.count_model_chunks(rt.store, model):
        bulk.delete_model_rows(rt.store, model, BENCH_TENANT)
        return
    bulk.drop_vector_index(rt.store, dim)
    bulk.delete_model_rows(rt.store, model, BENCH_TENANT)
    bulk.build_vector_index(rt.store, dim)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))], 2)

    return {"p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": round(ordered[-1], 2),
            "mean_ms": round(statistics.fmean(ordered), 2), "n": len(ordered)}  # fmt: skip


def search_latency(rt, embedder, n_chunks: int, n_queries: int, keep: bool, progress) -> dict[str, Any]:
    from docflow.store.search import SearchFilters, hybrid_search

    model = f"bench/{embedder.name}"
    load = _load(rt, n_chunks, embedder, model, progress)
    rng = random.Random(3)
    texts = [rng.choice(QUERY_TEMPLATES).format(**_fill("{vendor}", rng)) for _ in range(n_queries)]
    started = time.perf_counter()
    vectors = [embedder.embed([t])[0] for t in texts]
    embed_ms = (time.perf_counter() - started) * 1000 / len(texts)
    plain = SearchFilters(tenant=BENCH_TENANT)
    filtered = SearchFilters(tenant=BENCH_TENANT, doc_type="invoice", amount_min=100.0, amount_max=20000.0)
    for text, vector in zip(texts[:20], vectors[:20], strict=True):  # warm caches and the index
        hybrid_search(rt.store, text, vector, model, k=10, filters=plain, by_document=True)
    progress(f"search bench: {n_queries} hybrid queries...")
    timings: dict[str, list[float]] = {"tenant_filter": [], "tenant_type_amount_filters": []}
    hits = 0
    for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        flt, key = (filtered, "tenant_type_amount_filters") if i % 4 == 3 else (plain, "tenant_filter")
        t0 = time.perf_counter()
        result = hybrid_search(rt.store, text, vector, model, k=10, filters=flt, by_document=True)
        timings[key].append((time.perf_counter() - t0) * 1000)
        hits += bool(result)
    all_ms = [t for values in timings.values() for t in values]
    if not keep:
        _cleanup(rt, model, embedder.dimension)
    return {
        "chunks": n_chunks,
        "load": load,
        "latency": _percentiles(all_ms),
        "by_filter": {k: _percentiles(v) for k, v in timings.items() if v},
        "queries_with_hits": hits,
        "query_embedding_ms_mean": round(embed_ms, 2),
        "target_p95_ms": 50,
        "rows_kept": keep,
    }


def embedding_throughput(embedder, n_texts: int, rounds: int, progress) -> dict[str, Any]:
    rng = random.Random(5)
    texts = []
    while len(texts) < n_texts:  # chunk-sized texts (~120-180 estimated tokens) of varied content
        texts.append(
            " ".join(_fill(rng.choice(ts), rng)["text"] for ts in rng.sample(list(TEMPLATES.values()), 3))
        )
    model = getattr(embedder, "_model", None)
    batch_size = getattr(embedder, "batch_size", 32)

    def docflow_run() -> None:
        embedder.embed(texts)

    def plain_run() -> None:
        for start in range(0, len(texts), batch_size):
            model.encode(
                texts[start : start + batch_size], normalize_embeddings=True, show_progress_bar=False
            )

    best = {"docflow": float("inf"), "plain": float("inf")}
    embedder.embed(texts[:batch_size])  # warm-up
    for r in range(rounds):
        progress(f"embedding bench: round {r + 1}/{rounds}")
        for name, fn in (("docflow", docflow_run), ("plain", plain_run if model is not None else None)):
            if fn is None:
                continue
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    result: dict[str, Any] = {
        "model": embedder.name,
        "texts": len(texts),
        "batch_size": batch_size,
        "docflow_chunks_per_s": round(len(texts) / best["docflow"], 1),
    }
    if model is not None:
        result["plain_loop_chunks_per_s"] = round(len(texts) / best["plain"], 1)
        result["ratio"] = round(best["plain"] / best["docflow"], 3)
        result["target_ratio"] = 0.9
    return result


def search_section(
    settings: Settings, options: BenchOptions, progress: Callable[[str], None]
) -> dict[str, Any]:
    from docflow import backends
    from docflow.runtime import runtime

    rt = runtime(settings)
    embedder = backends.get_embedder(rt.settings)
    extra = options.extra
    search = search_latency(
        rt,
        embedder,
        n_chunks=int(extra.get("search_chunks", 100_000)),
        n_queries=int(extra.get("search_queries", 200)),
        keep=bool(extra.get("keep_search_rows", False)),
        progress=progress,
    )
    return {
        "search_p50_ms": search["latency"]["p50_ms"],
        "search_p95_ms": search["latency"]["p95_ms"],
        "search": search,
        "embedding": embedding_throughput(
            embedder, int(extra.get("embed_texts", 512)), int(extra.get("embed_rounds", 3)), progress
        ),
    }
