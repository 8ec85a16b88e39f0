"""Search and ask as Python functions (the CLI and the API call these).

`search` embeds the query with the configured embedder and runs the hybrid search over the chunks of *that*
model (see `docflow.store.search`), with optional filters and an optional reranker. It returns one hit per
document (its best chunk, the document's score) unless asked for chunks. Words of the query that name a
document type (a type of the classification rules or one of its file-name words, e.g. "receipt", "invoices",
"agreement") make documents of that type rank higher, and are left out of the full-text and name matching.

`ask` retrieves passages and answers from them:

* with an LLM configured (`DOCFLOW_ASK_BACKEND=openai`, or `auto` with `DOCFLOW_OPENAI_API_KEY` set; any
  OpenAI-compatible server through `DOCFLOW_OPENAI_BASE_URL`, model `DOCFLOW_OPENAI_MODEL`) the LLM writes an
  answer grounded in numbered passages and must cite them as [n]; the markers become "(file, p. N)" and the
  sources are the passages cited. An LLM answer that cites no passage (or only passages it was not given) is
  not returned: docflow falls back to the extractive answer, saying so.
* without one, the answer is the best supporting passages, labelled extractive, each with (file, page).

Never an answer without sources: with no passage found, the answer says so and claims nothing.
"""

import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache

from docflow.backends import Embedder
from docflow.backends.classify.local import RuleSet, current_rules
from docflow.backends.embed.query import query_embedder
from docflow.backends.embed.rerank import get_reranker
from docflow.models import Answer, SearchHit
from docflow.pipeline import Runtime
from docflow.settings import Settings
from docflow.store.search import SearchFilters, hybrid_search

NO_PASSAGES = "No supporting passages found."
NOT_IN_SOURCES = "NOT_IN_SOURCES"
_CITATION_RE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
MIN_TYPE_WORD = 4  # shorter file-name words of the rules ("inv", "cv", "bon") are too ambiguous in a query
PASSAGE_CHARS = 1200  # of each passage shown to the LLM
EXTRACTIVE_CHARS = 600  # of each passage in an extractive answer

SYSTEM_PROMPT = f"""You answer questions about a company's documents using ONLY the numbered passages given.
Rules:
- Every sentence of your answer must cite the passage(s) it relies on with their numbers in square brackets,
  e.g. [1] or [2, 3].
- Use only facts stated in the passages; do not use outside knowledge.
- If the passages do not contain the answer, reply exactly {NOT_IN_SOURCES}.
- Be concise."""


def search(
    rt: Runtime,
    query: str,
    k: int = 10,
    tenant: str | None = None,
    doc_type: str | None = None,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    fields: Mapping[str, str] | None = None,
    amount_min: float | None = None,
    amount_max: float | None = None,
    rerank: bool | None = None,
    chunks: bool = False,
    embedder: Embedder | None = None,
) -> list[SearchHit]:
    """The `k` best documents (or with `chunks`, chunks) for `query` that pass the filters (see
    `SearchFilters`).

    `rerank=None` follows `DOCFLOW_RERANK`; False skips the configured reranker. The query is embedded by
    `embedder`, or by `query_embedder` (the documents' model, without loading torch when it can)."""
    if not query.strip():
        return []
    filters = SearchFilters(
        tenant=tenant,
        doc_type=doc_type,
        date_from=date_from,
        date_to=date_to,
        fields=dict(fields or {}),
        amount_min=amount_min,
        amount_max=amount_max,
    )
    embedder = embedder or query_embedder(rt.settings)
    vector = embedder.embed([query])[0]
    reranker = get_reranker(rt.settings) if rerank is not False else None
    n = max(k, rt.settings.rerank_candidates) if reranker else k
    name_query, types = split_type_words(query, type_words(str(rt.settings.rules_path or "")))
    hits = hybrid_search(
        rt.store,
        query,
        vector,
        embedder.name,
        k=n,
        filters=filters,
        by_document=not chunks,
        name_query=name_query,
        boost_types=types,
    )
    if reranker is not None:
        hits = reranker.rerank(query, hits)
    return hits[:k]


def type_words(rules_path: str = "") -> dict[str, tuple[str, bool]]:
    """Word or phrase (lower case) -> (the document type it names, whether it is the type's own name): each
    type's name ("financial statement") and the rules' file-name words of at least MIN_TYPE_WORD characters
    ("agreement", "bill"), with plurals; not `other`."""
    return _type_words(current_rules(rules_path))


@lru_cache(maxsize=4)  # a RuleSet is read once per version of the file (current_rules)
def _type_words(rules: RuleSet) -> dict[str, tuple[str, bool]]:
    words: dict[str, tuple[str, bool]] = {}
    for name, spec in rules.types.items():
        if name == "other":
            continue
        hints = [(h.lower(), False) for h in spec.filename_hints if len(h) >= MIN_TYPE_WORD]
        for word, own in [(name.replace("_", " "), True), *hints]:
            for form in (word, word if word.endswith("s") else word + "s"):
                if form not in words or own:
                    words[form] = (name, own)
    return words


def split_type_words(query: str, words: Mapping[str, tuple[str, bool]]) -> tuple[str, list[str]]:
    """(the query without the types' own names, the types its words name). A file-name word ("agreement")
    names a type but stays in the query (it often means something else: "balance due"). The query itself
    when nothing else remains; longer phrases first."""
    rest = query
    named: list[str] = []
    for word in sorted(words, key=lambda w: (-len(w.split()), -len(w), w)):
        pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.IGNORECASE)
        if pattern.search(rest):
            doc_type, own = words[word]
            if own:
                rest = pattern.sub(" ", rest)
            named.append(doc_type)
    rest = " ".join(rest.split())
    return (rest if rest else query), list(dict.fromkeys(named))


def llm_configured(settings: Settings) -> bool:
    if settings.ask_backend == "auto":
        return settings.openai_api_key is not None
    return settings.ask_backend == "openai"


def ask(
    rt: Runtime, question: str, k: int = 5, tenant: str | None = None, doc_type: str | None = None
) -> Answer:
    """Retrieve, then answer with sources (grounded LLM answer, or extractive passages without an LLM)."""
    hits = search(rt, question, k=k, tenant=tenant, doc_type=doc_type, chunks=True)  # passages, not documents
    if not hits:
        return Answer(question=question, answer=NO_PASSAGES, extractive=True, sources=[])
    if not llm_configured(rt.settings):
        return extractive_answer(question, hits)
    return grounded_answer(rt.settings, question, hits)


def cite(hit: SearchHit) -> str:
    """How a source is cited: (file, page) — the page range when the passage spans pages."""
    name = hit.filename or hit.doc_id
    if hit.page_start is None:
        return f"({name})"
    pages = f"p. {hit.page_start}"
    if hit.page_end and hit.page_end != hit.page_start:
        pages = f"pp. {hit.page_start}-{hit.page_end}"
    return f"({name}, {pages})"


def extractive_answer(question: str, hits: list[SearchHit], note: str = "") -> Answer:
    """The best supporting passages, each with its (file, page), labelled extractive."""
    best = hits[:3]
    lines = [f"Extractive answer{note}: the most relevant passages, not a generated answer."]
    for i, h in enumerate(best, 1):
        lines.append(f"[{i}] {cite(h)} {' '.join(h.text.split())[:EXTRACTIVE_CHARS]}")
    return Answer(question=question, answer="\n".join(lines), extractive=True, sources=best)


def build_messages(question: str, hits: list[SearchHit]) -> list[dict[str, str]]:
    passages = "\n\n".join(
        f"[{i}] {cite(h)}\n{' '.join(h.text.split())[:PASSAGE_CHARS]}" for i, h in enumerate(hits, 1)
    )
    user = f"Passages:\n\n{passages}\n\nQuestion: {question}\nAnswer (cite passages as [n]):"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def cited_numbers(text: str, n_passages: int) -> list[int]:
    """Passage numbers cited as [n] or [n, m] that exist (1..n_passages), in order of first citation."""
    seen: list[int] = []
    for match in _CITATION_RE.finditer(text):
        for part in match.group(1).split(","):
            number = int(part)
            if 1 <= number <= n_passages and number not in seen:
                seen.append(number)
    return seen


def grounded_answer(settings: Settings, question: str, hits: list[SearchHit], client=None) -> Answer:
    """Ask the LLM for an answer from the passages; keep it only when it cites them."""
    from docflow.backends.embed.openai import chat

    text = chat(settings, build_messages(question, hits), client=client).strip()
    if not text or NOT_IN_SOURCES in text:
        return extractive_answer(question, hits, note=" (the LLM found no answer in the passages)")
    numbers = cited_numbers(text, len(hits))
    if not numbers:
        return extractive_answer(question, hits, note=" (the LLM answer cited no passage and was discarded)")

    def replace(match: re.Match[str]) -> str:
        valid = [int(p) for p in match.group(1).split(",") if 1 <= int(p) <= len(hits)]
        return " ".join(cite(hits[n - 1]) for n in dict.fromkeys(valid)) if valid else ""

    answer = re.sub(r"\s+([.,;:])", r"\1", _CITATION_RE.sub(replace, text)).strip()
    return Answer(question=question, answer=answer, extractive=False, sources=[hits[n - 1] for n in numbers])
