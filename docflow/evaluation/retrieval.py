"""The `retrieval` section of `docflow eval`: can a document be found by what its truth says it is about?

Queries come from the manifest's truth fields: an invoice's vendor name, a receipt's store name, a resume's
name and the legal-entity names among a contract's parties (CUAD lists aliases such as "Licensor" or
"Company" and whole clauses too; only names of two or more words with a company suffix make a query, at most
three per contract). Each name is asked twice: bare, and *typed* the way a person types it, the document
type's word first ("receipt <store name>", "invoice <vendor name>", "contract <party>", "resume <name>").
Each query is searched in the eval tenant with the configured embedder and search as `docflow search` does
(one hit per document); with `chunks=True`, as chunks grouped by document in rank order (the search before
it grouped by document). A query's *relevant* documents are every manifest document whose truth holds a
fuzzy-equal value for that field (two invoices of one vendor both count).

- `recall_at_5` / `typed_recall_at_5`: share of bare / typed queries with a relevant document among the first
  5 documents;
- `mrr` / `typed_mrr`: mean of 1 / rank of the first relevant document (0 when not in the first 10).
"""

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from docflow.evaluation.compare import fuzzy_ratio
from docflow.pipeline import Runtime

if TYPE_CHECKING:
    from docflow.evaluation import Item

EVAL_TENANT = "eval"
CHUNKS_PER_QUERY = 40  # chunks fetched per query, grouped into documents
MRR_DEPTH = 10
QUERY_FIELDS = {"invoice": "vendor_name", "receipt": "store_name", "resume": "name", "contract": "parties"}
MAX_PARTIES = 3
_ENTITY_RE = re.compile(
    r"\b(inc|llc|l\.l\.c|lp|l\.p|ltd|limited|corp|corporation|company|co|ag|gmbh|trust|partnership|"
    r"fund|plc|n\.v|b\.v|s\.a)\b\.?",
    re.IGNORECASE,
)


def _is_entity_name(value: str) -> bool:
    plain = len(value) <= 80 and len(value.split()) >= 2 and '"' not in value and "referred" not in value
    return plain and bool(_ENTITY_RE.search(value))


def queries_for(item: "Item") -> list[tuple[str, str]]:
    """(field, query text) pairs for one manifest item (empty when its type/truth gives none)."""
    name = QUERY_FIELDS.get(item.doc_type)
    value = (item.truth.get("fields") or {}).get(name) if name else None
    if not value:
        return []
    if isinstance(value, list):
        parties = [v for v in value if isinstance(v, str) and _is_entity_name(v)]
        return [(name, v) for v in parties[:MAX_PARTIES]]
    return [(name, str(value))]


def typed(item: "Item", query: str) -> str:
    """The query as a person types it: the document type's word, then the name."""
    return f"{item.doc_type.replace('_', ' ')} {query}"


def _values(item: "Item", name: str) -> list[str]:
    value = (item.truth.get("fields") or {}).get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def retrieval_section(
    rt: Runtime,
    items: list["Item"],
    tenant: str = EVAL_TENANT,
    corpus: list["Item"] | None = None,
    chunks: bool = False,
) -> dict[str, Any]:
    """Queries from `items`; a hit is relevant when any document of `corpus` (default: `items`) holds the
    queried value."""
    from docflow.retrieval import search

    corpus = items if corpus is None else corpus
    per_type: dict[str, dict[bool, list[tuple[bool, float]]]] = defaultdict(lambda: {False: [], True: []})
    misses: list[dict[str, Any]] = []
    names = {item.doc_id: item.path.name for item in corpus}
    for item in items:
        for name, bare in queries_for(item):
            relevant = {
                other.doc_id
                for other in corpus
                if any(fuzzy_ratio(bare, v) >= 0.85 for v in _values(other, name))
            }
            for is_typed, query in ((False, bare), (True, typed(item, bare))):
                if chunks:
                    hits = search(rt, query, k=CHUNKS_PER_QUERY, tenant=tenant, chunks=True)
                else:
                    hits = search(rt, query, k=MRR_DEPTH, tenant=tenant)
                ranked = list(dict.fromkeys(h.doc_id for h in hits))
                rank = next((i for i, d in enumerate(ranked[:MRR_DEPTH], 1) if d in relevant), None)
                found = rank is not None and rank <= 5
                per_type[item.doc_type][is_typed].append((found, 1.0 / rank if rank else 0.0))
                if not found:
                    misses.append(
                        {
                            "query": query,
                            "typed": is_typed,
                            "field": f"{item.doc_type}.{name}",
                            "expected": item.path.name,
                            "rank": rank,
                            "top5": [names.get(d, d) for d in ranked[:5]],
                        }
                    )

    def measures(results: list[tuple[bool, float]], prefix: str = "") -> dict[str, float | None]:
        n = len(results)
        return {
            f"{prefix}recall_at_5": round(sum(f for f, _ in results) / n, 4) if n else None,
            f"{prefix}mrr": round(sum(m for _, m in results) / n, 4) if n else None,
        }

    def pooled(is_typed: bool) -> list[tuple[bool, float]]:
        return [r for values in per_type.values() for r in values[is_typed]]

    return {
        **measures(pooled(False)),
        **measures(pooled(True), "typed_"),
        "n_queries": len(pooled(False)),
        "per_type": {
            t: {**measures(v[False]), **measures(v[True], "typed_"), "n": len(v[False])}
            for t, v in sorted(per_type.items())
        },
        "misses": misses,
    }
