"""Asset checks per document partition; the rules live in docflow.quality (no Dagster there).

- extracted_fields: `schema_valid` is blocking: stored values that do not validate against the type's schema
  would be published into the chunks' metadata and the analysts' typed views, so `embeddings` does not run
  and the document is marked failed with the reason. `required_fields_present` only warns.
- embeddings: `chunks_present` and `dimension_matches` (vectors of another model are invisible to the
  index). Both blocking for anything built on top of the embeddings later.
One op per asset (a multi-asset check) keeps the overhead per document to two small steps.
"""

import warnings
from collections.abc import Iterator

import dagster as dg

from docflow import backends, quality
from docflow.defs.partitions import documents
from docflow.defs.resources import DocflowResource

SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def _spec(name: str, asset: str, description: str, blocking: bool) -> dg.AssetCheckSpec:
    """A check per document partition (partitioned checks are a Dagster 1.13 preview: silence its warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=documents
        )


def _result(asset: str, name: str, verdict: quality.Verdict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=verdict.passed,
        severity=SEVERITY[verdict.severity],
        description=verdict.message,
        metadata={"message": verdict.message, **verdict.details},
    )


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
    ],
)
def extracted_fields_checks(
    context: dg.AssetCheckExecutionContext, docflow: DocflowResource
) -> Iterator[dg.AssetCheckResult]:
    rt = docflow.runtime()
    doc_id = context.partition_key
    extraction = rt.store.load_extraction(doc_id)
    valid = quality.schema_valid(extraction)
    if not valid.passed and valid.severity == "error":
        rt.store.set_status(
            doc_id, "failed", stage="extracted_fields", error=f"schema_valid: {valid.message}"
        )
    yield _result("extracted_fields", "schema_valid", valid)
    yield _result("extracted_fields", "required_fields_present", quality.required_fields_present(extraction))


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
    vectors = rt.store.chunk_vectors(context.partition_key)
    dimensions: dict[int, int] = {}
    for (_, dims), n in vectors.items():
        dimensions[dims] = dimensions.get(dims, 0) + n
    yield _result("embeddings", "chunks_present", quality.chunks_present(sum(vectors.values())))
    expected = backends.get_embedder(rt.settings).dimension
    yield _result("embeddings", "dimension_matches", quality.dimension_matches(dimensions, expected))


CHECKS = [extracted_fields_checks, embeddings_checks]
