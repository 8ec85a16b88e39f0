"""Asset checks per document partition; the rules live in docflow.quality (no Dagster there).

- extracted_fields: `schema_valid` is blocking: stored values that do not validate against the type's schema
  would be published into the chunks' metadata and the analysts' typed views, so `embeddings` does not run
  and the document is marked failed with the reason. Values kept but implausible (docflow.schemas.
  plausibility: left out of the typed views' columns) and values the extractor dropped only warn, as
  do `required_fields_present` and `provenance_matches` (a value whose source text does not hold it).
- embeddings: `chunks_present` and `dimension_matches` (vectors of another model are invisible to the
  index). Both blocking for anything built on top of the embeddings later.
One op per asset (a multi-asset check) keeps the overhead per document to two small steps. A run over a
range of documents (a backfill from the UI) checks each of them and reports one non-blocking result per
check that names the documents that failed it.
"""

import warnings
from collections.abc import Iterator, Set

import dagster as dg

from docflow import backends, quality
from docflow.defs.assets import failed_documents
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource
from docflow.errors import NotFound
from docflow.pipeline import Runtime
from docflow.store.tenants import passthrough_ids

SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def _spec(name: str, asset: str, description: str, blocking: bool) -> dg.AssetCheckSpec:
    """A check per document partition (partitioned checks are a Dagster 1.13 preview: silence its warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=documents
        )


def _result(asset: str, name: str, verdict: quality.Verdict, private: bool = False) -> dg.AssetCheckResult:
    """`private` (a passthrough document): a verdict's message and details may quote field values, so the
    result carries whether it passed and the details that are numbers only."""
    if private:
        numbers = {k: v for k, v in verdict.details.items() if isinstance(v, int | float)}
        message = (
            f"{name} {'passed' if verdict.passed else 'failed'} (details withheld: passthrough document)"
        )
        metadata = {"passthrough": True, **numbers}
    else:
        message, metadata = verdict.message, {"message": verdict.message, **verdict.details}
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=verdict.passed,
        severity=SEVERITY[verdict.severity],
        description=message,
        metadata=metadata,
    )


def _batch_result(
    asset: str, name: str, verdicts: dict[str, quality.Verdict], private: Set[str] = frozenset()
) -> dg.AssetCheckResult:
    """One result for a batch run's documents (a backfill from the UI runs ranges of partitions; Dagster
    records a partitioned check per partition only for a run of one). It never blocks the batch: a document
    whose stored fields are invalid was marked failed, and the next step skips it while the others go on.
    A passthrough document that fails is named without the verdict's message."""
    failing = {
        doc_id: "withheld: passthrough document" if doc_id in private else v.message
        for doc_id, v in verdicts.items()
        if not v.passed
    }
    summary = f"{len(verdicts) - len(failing)} of {len(verdicts)} documents passed"
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        description=summary + (f"; failing: {', '.join(sorted(failing))}" if failing else ""),
        metadata={"documents": len(verdicts), "failing": dg.MetadataValue.json(failing)},
    )


def _results(
    context: dg.AssetCheckExecutionContext,
    rt: Runtime,
    asset: str,
    verdicts: dict[str, dict[str, quality.Verdict]],
) -> Iterator[dg.AssetCheckResult]:
    """`verdicts`: check name -> document -> verdict."""
    private = passthrough_ids(rt.store, list(context.partition_keys))
    for name, by_doc in verdicts.items():
        if len(context.partition_keys) == 1 and len(by_doc) == 1:
            [(doc_id, verdict)] = by_doc.items()
            yield _result(asset, name, verdict, doc_id in private)
        else:
            yield _batch_result(asset, name, by_doc, private)


def _documents(context: dg.AssetCheckExecutionContext, rt: Runtime) -> list[str]:
    """The run's documents, less those of a batch that failed in an earlier step of this run."""
    keys = list(context.partition_keys)
    if len(keys) == 1:
        return keys
    failed_in_run, _ = failed_documents(context, rt, keys)
    return [k for k in keys if k not in failed_in_run]


@dg.multi_asset_check(
    name="extracted_fields_checks",
    specs=[
        _spec("schema_valid", "extracted_fields", "Stored fields validate against the type's schema.", True),
        _spec(
            "required_fields_present",
            "extracted_fields",
            "The fields the document's type requires have values (warns only).",
            False,
        ),
        _spec(
            "provenance_matches",
            "extracted_fields",
            "Each value's source text on the page holds the value after normalization (warns only).",
            False,
        ),
    ],
)
def extracted_fields_checks(
    context: dg.AssetCheckExecutionContext, docflow: DocflowResource
) -> Iterator[dg.AssetCheckResult]:
    rt = docflow.runtime()
    verdicts: dict[str, dict[str, quality.Verdict]] = {
        "schema_valid": {},
        "required_fields_present": {},
        "provenance_matches": {},
    }
    for doc_id in _documents(context, rt):
        try:
            extraction = rt.store.load_extraction(doc_id)
        except NotFound:
            if len(context.partition_keys) == 1:
                raise
            continue  # a batch's document that never got this far: the next step fails it on its own
        valid = quality.schema_valid(extraction, rt.settings.rules_path)
        if not valid.passed and valid.severity == "error":
            rt.store.set_status(
                doc_id, "failed", stage="extracted_fields", error=f"schema_valid: {valid.message}"
            )
        verdicts["schema_valid"][doc_id] = valid
        verdicts["required_fields_present"][doc_id] = quality.required_fields_present(
            extraction, rt.settings.rules_path
        )
        verdicts["provenance_matches"][doc_id] = quality.provenance_matches(extraction)
    yield from _results(context, rt, "extracted_fields", verdicts)


@dg.multi_asset_check(
    name="embeddings_checks",
    specs=[
        _spec("chunks_present", "embeddings", "The document has at least one chunk to be found by.", True),
        _spec(
            "dimension_matches",
            "embeddings",
            "Every vector has the configured embedding model's dimension.",
            True,
        ),
    ],
)
def embeddings_checks(
    context: dg.AssetCheckExecutionContext, docflow: DocflowResource
) -> Iterator[dg.AssetCheckResult]:
    rt = docflow.runtime()
    expected = backends.get_embedder(rt.settings).dimension
    verdicts: dict[str, dict[str, quality.Verdict]] = {"chunks_present": {}, "dimension_matches": {}}
    for doc_id in _documents(context, rt):
        vectors = rt.store.chunk_vectors(doc_id)
        dimensions: dict[int, int] = {}
        for (_, dims), n in vectors.items():
            dimensions[dims] = dimensions.get(dims, 0) + n
        verdicts["chunks_present"][doc_id] = quality.chunks_present(sum(vectors.values()))
        verdicts["dimension_matches"][doc_id] = quality.dimension_matches(dimensions, expected)
    yield from _results(context, rt, "embeddings", verdicts)


CHECKS = [extracted_fields_checks, embeddings_checks]
