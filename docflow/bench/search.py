"""`docflow bench --only search`: hybrid search latency and recall at scale, and embedding throughput.

Options (`--extra KEY=VALUE`): `search_chunks` (default 100000), `search_queries` per filter class (40),
`search_recall_queries` per class (20), `keep_search_rows` (1: keep the rows; a later run of the same size
reuses them), `embed_texts`, `embed_rounds`.

Search: synthetic chunks are bulk-loaded with binary COPY, streamed in blocks, into `docflow.chunks` (and
their documents into `docflow.documents`) under the embedding model name `bench/<embedder name>`, so that no
real search (which filters on its own model) ever sees them. Tenants of skewed sizes (TENANTS: one with 60% of
the chunks, four medium, one with 0.5%), documents of 1 to MAX_CHUNKS_PER_DOC chunks, four doc types, document
dates over DATE_YEARS in the type's date field, log-normal amounts. Texts are templated business prose;
vectors are the real embeddings of a few thousand base texts, each chunk's moved within the span of a few
other bases of its type (`span_vectors`: a generator fitted on dev data so that its neighbourhood
statistics, local intrinsic dimensionality and relative contrast, match real chunk embeddings' at the same
size; reported under `load.generator`). The HNSW index is dropped before the load and built once after it
(time, the server's peak RSS, sizes reported), then a partial HNSW index per doc type (time per type).

Then per filter class (`filter_classes`: none, a large and a small tenant, tenant + type, tenant + a year of
dates, tenant + type + amount range), `search_queries` queries (real query embeddings) through
`docflow.store.search.hybrid_search` by document, called as `docflow search` calls it, and through its
semantic retriever alone (`semantic_search`): p50/p95 of both, the retriever's strategies (index, wider probe,
exact), and its recall@10 against `exact_search` (every row passing the filter compared). The query embedding
is timed apart. The rows are deleted afterwards unless `keep_search_rows`.

Embedding throughput: the same chunk texts embedded through docflow's embedder (`get_embedder().embed`) and
with the same sentence-transformers model called directly in a plain loop of batches; best of `rounds`, ratio
docflow / plain (target >= 0.9).
"""

import json
import random
import statistics
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from docflow.bench import BenchOptions
from docflow.settings import Settings
from docflow.store import bulk, synthetic

BENCH_TENANT = "bench-search"  # the large tenant; every bench tenant's name starts with it
# Tenants of skewed sizes and their shares of the chunks: one large, four medium, one small.
TENANTS = (
    (BENCH_TENANT, 0.60),
    (f"{BENCH_TENANT}-m1", 0.15),
    (f"{BENCH_TENANT}-m2", 0.12),
    (f"{BENCH_TENANT}-m3", 0.08),
    (f"{BENCH_TENANT}-m4", 0.045),
    (f"{BENCH_TENANT}-s", 0.005),
)
MEDIUM_TENANT, SMALL_TENANT = TENANTS[1][0], TENANTS[-1][0]
TYPE_WEIGHTS = {"invoice": 0.40, "receipt": 0.25, "report": 0.20, "contract": 0.15}
DATE_FIELD = {
    "invoice": "invoice_date",
    "receipt": "date",
    "contract": "agreement_date",
    "report": "issue_date",
}
AMOUNT_FIELD = {"invoice": "total_amount", "receipt": "total", "contract": "amount"}
DATE_YEARS = (2016, 2026)
UNDATED_SHARE = 0.05
MEAN_CHUNKS_PER_DOC = 20
MAX_CHUNKS_PER_DOC = 400
# Base texts (really embedded) per template; a chunk's vector is one of them moved within the span of others.
BASES_PER_TEMPLATE = 250
# A chunk's vector: its base plus Gaussian steps (standard deviation SPAN_SIGMA) along the differences to
# SPAN_BASES other bases of its type. Fitted on dev data (see `_chunk_blocks`).
SPAN_BASES = 3
SPAN_SIGMA = 0.8
NEIGHBOURHOOD_POINTS = 2844  # the generator's statistics are reported at the size of the set it was fitted on
BLOCK_CHUNKS = 20_000  # chunks generated and sent per COPY block (memory stays at a block's vectors)
INDEX_BUILD_MEMORY = "4GB"  # maintenance_work_mem for the bulk HNSW build: the graph of 1M 384-d vectors fits
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


def _documents(n_chunks: int, seed: int) -> list[dict[str, Any]]:
    """The synthetic documents: per tenant (TENANTS' shares of the chunks), chunk counts skewed like real
    files (geometric, mean MEAN_CHUNKS_PER_DOC), a doc type by TYPE_WEIGHTS, a document date over DATE_YEARS
    in the type's date field (a few without one: dated by registration), an amount (log-normal) in the type's
    amount field."""
    import numpy as np

    rng = np.random.default_rng(seed)
    types, weights = list(TYPE_WEIGHTS), list(TYPE_WEIGHTS.values())
    first_day = np.datetime64(f"{DATE_YEARS[0]}-01-01")
    days = int((np.datetime64(f"{DATE_YEARS[1] + 1}-01-01") - first_day).astype(int))
    docs: list[dict[str, Any]] = []
    left = n_chunks
    for t, (tenant, share) in enumerate(TENANTS):
        quota = left if t == len(TENANTS) - 1 else min(left, round(n_chunks * share))
        left -= quota
        while quota > 0:
            n = int(min(quota, min(rng.geometric(1 / MEAN_CHUNKS_PER_DOC), MAX_CHUNKS_PER_DOC)))
            quota -= n
            doc_type = types[int(rng.choice(len(types), p=weights))]
            fields: dict[str, Any] = {"vendor_name": VENDORS[int(rng.integers(len(VENDORS)))]}
            if rng.random() > UNDATED_SHARE:
                fields[DATE_FIELD[doc_type]] = str(first_day + int(rng.integers(days)))
            if doc_type in AMOUNT_FIELD:
                fields[AMOUNT_FIELD[doc_type]] = round(float(rng.lognormal(6.0, 1.3)), 2)
            d = len(docs)
            docs.append({"doc_id": f"{tenant}-{d:032x}", "tenant": tenant, "doc_type": doc_type,
                         "fields": fields, "chunks": n, "seq": d})  # fmt: skip
    return docs


def _chunk_blocks(docs, base_vectors, bases: list[dict[str, Any]], model: str, seed: int, progress):
    """Binary COPY tuples (bulk.BINARY_CHUNK_COLUMNS) in blocks of about BLOCK_CHUNKS chunks. A chunk's text
    is a base text of its document's type; its vector is `span_vectors`' (all formatted with numpy)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    dim = base_vectors.shape[1]
    by_type = {t: np.array([i for i, b in enumerate(bases) if b["type"] == t]) for t in TYPE_WEIGHTS}
    texts = [b["text"].encode() for b in bases]
    model_field = _field(model.encode())
    vec_head = struct.pack(">iHH", 4 + 4 * dim, dim, 0)
    int4 = struct.Struct(">ii")
    done, block_docs, block_n = 0, [], 0
    for i, doc in enumerate(docs):
        block_docs.append(doc)
        block_n += doc["chunks"]
        if block_n < BLOCK_CHUNKS and i < len(docs) - 1:
            continue
        spans = np.concatenate(
            [rng.choice(by_type[d["doc_type"]], (d["chunks"], SPAN_BASES + 1)) for d in block_docs]
        )
        picks = spans[:, 0]
        vectors = span_vectors(base_vectors, spans, rng).astype(">f4")
        refs = rng.integers(1000, 99999, len(picks))
        out = bytearray()
        row = 0
        for d in block_docs:
            id_field = _field(d["doc_id"].encode())
            meta = {"doc_type": d["doc_type"], "tenant": d["tenant"], "fields": d["fields"]}
            meta_field = _field(b"\x01" + json.dumps(meta).encode())
            for c in range(d["chunks"]):
                text = texts[picks[row]] + b" Ref %d." % refs[row]
                out += b"\x00\x09" + id_field + int4.pack(4, c) + _field(text) + int4.pack(4, 1)
                out += int4.pack(4, 1) + int4.pack(4, text.count(b" ") + 1) + meta_field + model_field
                out += vec_head + vectors[row].tobytes()
                row += 1
        done += row
        yield bytes(out)
        if done // 100_000 != (done - row) // 100_000:
            progress(f"search bench: {done} chunks sent ({time.strftime('%H:%M:%S')})")
        block_docs, block_n = [], 0


def span_vectors(base_vectors, spans, rng):
    """Unit vectors `b0 + sum_i g_i (b_i - b0)`, g_i ~ N(0, SPAN_SIGMA^2), for rows of base indices
    `spans` = [b0, b1..b_SPAN_BASES]: each chunk varies its base text's embedding along a few directions
    that real texts of its type differ in.

    Why not isotropic noise: Gaussian noise in every dimension makes each base a cloud of copies at nearly
    equal distances from any query whose local intrinsic dimensionality grows with the corpus (it fills all
    the dimensions), which real text embeddings do not do; an ANN index's recall on it errs far low.
    SPAN_BASES and SPAN_SIGMA were fitted on dev data: the eval set's dev documents parsed, chunked and
    embedded by docflow, deduplicated. At the same number of points the generator's neighbourhood
    statistics match the real chunks' (`neighbourhood_stats`: local intrinsic dimensionality, relative
    contrast, the gap between the 10th and 11th neighbour), and its intrinsic dimensionality stays near
    the real value as the corpus grows. The values are in docs/benchmarks.md (search at a million chunks)."""
    import numpy as np

    base, others = base_vectors[spans[:, 0]], base_vectors[spans[:, 1:]]
    steps = rng.normal(0.0, SPAN_SIGMA, (len(spans), spans.shape[1] - 1)).astype(np.float32)
    out = base + np.einsum("nr,nrd->nd", steps, others - base[:, None, :])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def neighbourhood_stats(vectors, n_queries: int = 1000, k: int = 10, k_lid: int = 20, seed: int = 0):
    """Medians over `n_queries` points of the set (each against all others, by the Euclidean distance of the
    unit vectors, in the order of cosine distances) of: the local intrinsic dimensionality (MLE over the
    `k_lid` nearest), the relative contrast (mean distance / distance of the `k`-th neighbour), the relative
    gap between the `k`-th and `k+1`-th neighbours' distances, and those distances. Points closer than 1e-9
    to the query count as itself (remove duplicates first)."""
    import numpy as np

    x = np.asarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    queries = rng.choice(len(x), min(n_queries, len(x)), replace=False)
    # the Euclidean distance of unit vectors (cosine distance, 1 - cos, is its square / 2: the intrinsic
    # dimensionality estimated from it would be half)
    dist = np.sqrt(np.maximum(2.0 - 2.0 * (x[queries] @ x.T), 0.0))
    dist[np.arange(len(queries)), queries] = np.inf
    near = np.sort(np.partition(dist, k_lid, axis=1)[:, :k_lid], axis=1)
    mean = np.where(np.isinf(dist), 0.0, dist).sum(axis=1) / (len(x) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(near > 1e-9, near, np.nan) / near[:, -1:])
        lid = -1.0 / np.nanmean(logs[:, :-1], axis=1)
        contrast = mean / near[:, k - 1]
        gap = (near[:, k] - near[:, k - 1]) / near[:, k - 1]
    return {
        "points": len(x),
        "lid_mle": round(float(np.nanmedian(lid)), 3),
        "relative_contrast": round(float(np.nanmedian(contrast)), 3),
        "gap_k_k1": round(float(np.nanmedian(gap)), 4),
        "distance_k": round(float(np.median(near[:, k - 1])), 4),
        "distance_mean": round(float(np.median(mean)), 4),
    }


def _field(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def _load(rt, n_chunks: int, embedder, model: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """Bulk-load the synthetic rows (reusing a previous run's rows of the same size); returns timings."""
    import numpy as np

    have = bulk.count_model_chunks(rt.store, model)
    if have == n_chunks and synthetic.count(rt.store, SMALL_TENANT)[0]:
        progress(f"search bench: reusing {have} synthetic chunks")
        return {"reused": True, **_sizes(rt, embedder.dimension)}
    _cleanup(rt, model, embedder.dimension, rebuild=False)
    rng = random.Random(7)
    bases = [
        {**_fill(t, rng), "type": doc_type}
        for _ in range(BASES_PER_TEMPLATE)
        for doc_type, templates in TEMPLATES.items()
        for t in templates
    ]
    started = time.perf_counter()
    base_vectors = np.asarray(embedder.embed([b["text"] for b in bases]), dtype=np.float32)
    embedded = time.perf_counter()
    generator = _generator_stats(base_vectors, bases)
    docs = _documents(n_chunks, seed=11)
    dim = base_vectors.shape[1]
    progress(f"search bench: COPY {n_chunks} chunks of {len(docs)} documents...")
    # Inserting rows one by one into a live HNSW graph takes far longer than building the graph once:
    # drop the dimension's index, COPY, rebuild (searches meanwhile stay correct, just exact and slower).
    bulk.drop_vector_index(rt.store, dim)
    doc_rows = (
        (d["doc_id"], d["tenant"], "bench", f"bench/{d['doc_id']}.pdf", f"{d['seq']:064x}",
         f"{d['doc_id']}.pdf", "done")
        for d in docs
    )  # fmt: skip
    blocks = _chunk_blocks(docs, base_vectors, bases, model, seed=13, progress=progress)
    bulk.copy_binary_chunks(rt.store, doc_rows, blocks)
    copied = time.perf_counter()
    progress("search bench: building the HNSW index...")
    with _PeakRss(bulk.backend_pid(rt.store)) as peak:
        build_started = time.perf_counter()
        bulk.build_vector_index(rt.store, dim, memory=INDEX_BUILD_MEMORY)
        loaded = time.perf_counter()
    progress(f"search bench: index built in {loaded - build_started:.0f} s")
    type_builds = _build_type_indexes(rt, dim, progress)
    bulk.vacuum_analyze(rt.store)
    return {
        "reused": False,
        "documents": len(docs),
        "embed_base_texts_s": round(embedded - started, 2),
        "generate_and_copy_s": round(copied - embedded, 2),
        "copy_rows_per_s": round(n_chunks / max(copied - embedded, 1e-9)),
        "index_build_s": round(loaded - build_started, 2),
        "index_build_memory": INDEX_BUILD_MEMORY,
        "index_build_peak_rss_mb": peak.result(),
        "type_index_build_s": type_builds,
        "generator": generator,
        **_sizes(rt, dim),
    }


def _build_type_indexes(rt, dim: int, progress: Callable[[str], None]) -> dict[str, float]:
    """A partial HNSW index per doc type (`bulk.build_vector_index`'s `doc_type`), every type of the corpus:
    filtered searches naming a type probe their type's graph. Seconds per type."""
    seconds = {}
    for doc_type in TYPE_WEIGHTS:
        started = time.perf_counter()
        bulk.build_vector_index(rt.store, dim, memory=INDEX_BUILD_MEMORY, doc_type=doc_type)
        seconds[doc_type] = round(time.perf_counter() - started, 2)
        progress(f"search bench: {doc_type} index built in {seconds[doc_type]:.0f} s")
    return seconds


def _generator_stats(base_vectors, bases: list[dict[str, Any]]) -> dict[str, Any]:
    """The generator's parameters and `neighbourhood_stats` of NEIGHBOURHOOD_POINTS of its vectors (types
    drawn by TYPE_WEIGHTS), to compare with the real chunks' at the same size."""
    import numpy as np

    rng = np.random.default_rng(17)
    by_type = {t: np.array([i for i, b in enumerate(bases) if b["type"] == t]) for t in TYPE_WEIGHTS}
    types = rng.choice(list(TYPE_WEIGHTS), NEIGHBOURHOOD_POINTS, p=list(TYPE_WEIGHTS.values()))
    spans = np.stack([rng.choice(by_type[t], SPAN_BASES + 1) for t in types])
    return {
        "span_bases": SPAN_BASES,
        "span_sigma": SPAN_SIGMA,
        "neighbourhood": neighbourhood_stats(span_vectors(base_vectors, spans, rng)),
    }


def _sizes(rt, dim: int) -> dict[str, Any]:
    return {
        f"{k[: -len('_bytes')]}_mb": round(v / 2**20) for k, v in bulk.relation_sizes(rt.store, dim).items()
    }


class _PeakRss:
    """Samples the Postgres server's memory while a statement runs: the postmaster's children (the backend
    and its parallel workers). RSS counts the shared buffers a process touched once per process, so the sum
    overstates; `max_process_mb` is the largest single process."""

    def __init__(self, backend_pid: int, interval: float = 0.5) -> None:
        self.backend_pid, self.interval = backend_pid, interval
        self.peak_sum = self.peak_max = 0
        self._stop = threading.Event()

    def __enter__(self) -> "_PeakRss":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            import psutil

            postmaster = psutil.Process(self.backend_pid).parent()
        except Exception:  # no psutil or no access to the server's processes: no measurement
            return
        while not self._stop.is_set():
            rss = []
            for child in postmaster.children():
                try:
                    rss.append(child.memory_info().rss)
                except psutil.Error:
                    continue
            self.peak_sum = max(self.peak_sum, sum(rss))
            self.peak_max = max(self.peak_max, max(rss, default=0))
            self._stop.wait(self.interval)

    def result(self) -> dict[str, int]:
        return {"sum_mb": round(self.peak_sum / 2**20), "max_process_mb": round(self.peak_max / 2**20)}


def _cleanup(rt, model: str, dim: int, rebuild: bool = True) -> None:
    """Remove the synthetic rows; the index is rebuilt rather than left with dead entries."""
    tenants = [t for t, _ in TENANTS]
    if not bulk.count_model_chunks(rt.store, model):
        bulk.delete_model_rows(rt.store, model, tenants)
        return
    bulk.drop_vector_index(rt.store, dim)
    bulk.delete_model_rows(rt.store, model, tenants)
    if rebuild:
        bulk.build_vector_index(rt.store, dim)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))], 2)

    return {"p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": round(ordered[-1], 2),
            "mean_ms": round(statistics.fmean(ordered), 2), "n": len(ordered)}  # fmt: skip


def filter_classes() -> dict[str, Any]:
    """The filters measured, from none to selective: tenants large and small, a medium tenant with a type or
    a year of document dates, the large tenant with a type and an amount range."""
    from datetime import date

    from docflow.store.search import SearchFilters

    return {
        "none": SearchFilters(),
        "tenant_large": SearchFilters(tenant=BENCH_TENANT),
        "tenant_small": SearchFilters(tenant=SMALL_TENANT),
        "tenant_type": SearchFilters(tenant=MEDIUM_TENANT, doc_type="contract"),
        "tenant_date": SearchFilters(
            tenant=MEDIUM_TENANT, date_from=date(2023, 1, 1), date_to=date(2023, 12, 31)
        ),
        "tenant_type_amount": SearchFilters(
            tenant=BENCH_TENANT, doc_type="invoice", amount_min=100.0, amount_max=1000.0
        ),
    }


def search_latency(
    rt, embedder, n_chunks: int, n_queries: int, n_recall: int, keep: bool, progress
) -> dict[str, Any]:
    """Per filter class: p50/p95 of the hybrid search (by document, as `docflow search`) and of its semantic
    retriever alone, the semantic retriever's strategies, and its recall@10 against exact search."""
    from docflow.retrieval import split_type_words, type_words
    from docflow.store.search import (
        count_matching,
        distances,
        exact_search,
        hybrid_search,
        semantic_search,
    )

    model = f"bench/{embedder.name}"
    load = _load(rt, n_chunks, embedder, model, progress)
    rng = random.Random(3)
    texts = [rng.choice(QUERY_TEMPLATES).format(**_fill("{vendor}", rng)) for _ in range(n_queries)]
    started = time.perf_counter()
    vectors = [embedder.embed([t])[0] for t in texts]
    embed_ms = (time.perf_counter() - started) * 1000 / len(texts)
    classes = filter_classes()
    words = type_words(str(rt.settings.rules_path or ""))
    # as `docflow search` calls it (docflow.retrieval.search): by document, words naming a type apart
    named = [split_type_words(text, words) for text in texts]

    def search(i: int, flt) -> list:
        name_query, types = named[i]
        return hybrid_search(rt.store, texts[i], vectors[i], model, k=10, filters=flt, by_document=True,
                             name_query=name_query, boost_types=types)  # fmt: skip

    for i in range(min(20, len(texts))):  # warm caches and the index
        search(i, classes["none"])
    by_filter: dict[str, Any] = {}
    all_ms: list[float] = []
    for name, flt in classes.items():
        progress(f"search bench: {name}: {n_queries} queries...")
        hybrid_ms, semantic_ms, strategies, hits = [], [], {}, 0
        for i, vector in enumerate(vectors):
            t0 = time.perf_counter()
            result = search(i, flt)
            t1 = time.perf_counter()
            _, strategy = semantic_search(rt.store, vector, model, flt, candidates=100)
            t2 = time.perf_counter()
            hybrid_ms.append((t1 - t0) * 1000)
            semantic_ms.append((t2 - t1) * 1000)
            strategies[strategy] = strategies.get(strategy, 0) + 1
            hits += bool(result)
        all_ms += hybrid_ms
        recalls, tolerant, ratios = [], [], []
        for vector in vectors[:n_recall]:
            found, _ = semantic_search(rt.store, vector, model, flt, candidates=100)
            truth = exact_search(rt.store, vector, model, flt, k=10)
            if truth:
                recalls.append(len(set(found[:10]) & set(truth)) / len(truth))
                # as ann-benchmarks counts: a hit within 1e-3 of the 10th true distance is a true neighbour
                got, true = distances(rt.store, vector, found[:10]), distances(rt.store, vector, truth)
                tolerant.append(sum(d <= true[-1] + 1e-3 for d in got) / len(truth))
                ratios.append(sum(got) / max(sum(true), 1e-9) if len(got) == len(true) else float("nan"))
        by_filter[name] = {
            "matching_chunks": count_matching(rt.store, model, flt),
            "hybrid": _percentiles(hybrid_ms),
            "semantic": _percentiles(semantic_ms),
            "semantic_strategies": strategies,
            "recall_at_10": round(statistics.fmean(recalls), 4) if recalls else None,
            "recall_at_10_min": round(min(recalls), 2) if recalls else None,
            "recall_at_10_within_1e-3": round(statistics.fmean(tolerant), 4) if tolerant else None,
            "distance_ratio_at_10": round(statistics.fmean(ratios), 4) if ratios else None,
            "queries_with_hits": hits,
        }
    if not keep:
        _cleanup(rt, model, embedder.dimension)
    return {
        "chunks": n_chunks,
        "load": load,
        "latency": _percentiles(all_ms),
        "by_filter": by_filter,
        "worst_hybrid_p95_ms": max(v["hybrid"]["p95_ms"] for v in by_filter.values()),
        "worst_recall_at_10": min(
            (v["recall_at_10"] for v in by_filter.values() if v["recall_at_10"] is not None), default=None
        ),
        "query_embedding_ms_mean": round(embed_ms, 2),
        "target_p95_ms": 50,
        "target_recall_at_10": 0.95,
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
        n_queries=int(extra.get("search_queries", 40)),
        n_recall=int(extra.get("search_recall_queries", 20)),
        keep=options.flag("keep_search_rows", False),
        progress=progress,
    )
    return {
        "search_p50_ms": search["latency"]["p50_ms"],
        "search_p95_ms": search["latency"]["p95_ms"],
        "search_worst_p95_ms": search["worst_hybrid_p95_ms"],
        "search_worst_recall_at_10": search["worst_recall_at_10"],
        "search": search,
        "embedding": embedding_throughput(
            embedder, int(extra.get("embed_texts", 512)), int(extra.get("embed_rounds", 3)), progress
        ),
    }
