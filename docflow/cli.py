"""The `docflow` command. Every command works with nothing configured (embedded Postgres and S3)."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from docflow.errors import DocflowError
from docflow.runtime import REPO_ROOT, runtime
from docflow.settings import get_settings


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group()
def cli() -> None:
    """docflow: a document pipeline on Dagster (classify, parse, extract, embed, search)."""


@cli.command()
@click.option("--env", "env_only", is_flag=True, help="Print only the `export` lines (for `eval`).")
def up(env_only: bool) -> None:
    """Start (or reuse) the embedded Postgres and S3, migrate, and prepare the Dagster instance.

    Prints every variable other tools need to reach the same services (the `dagster` CLI,
    `DagsterInstance.get()`, `aws`, boto3): `eval "$(docflow up --env)"` sets them in a shell."""
    from docflow.defs.assets import POOLS
    from docflow.orchestration.instance import configure_pools, dagster_env, open_instance

    settings = get_settings()
    env = dagster_env(settings)
    configure_pools(open_instance(env), POOLS)
    # a shell that already ran `eval "$(docflow up --env)"` configures the services instead of embedding them:
    # the S3 credentials it holds are then only in its environment
    values = {name: env.get(name) or os.environ.get(name) for name in UP_VARIABLES}
    exports = "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items() if value)
    if env_only:
        click.echo(exports)
        return
    key = f"{settings.prefix}{settings.default_tenant}/invoice.pdf"
    aws_endpoint = "" if settings.s3_endpoint_url == "aws" else " --endpoint-url $DOCFLOW_S3_ENDPOINT_URL"
    boto_endpoint = (
        "" if settings.s3_endpoint_url == "aws" else 'endpoint_url=os.environ["DOCFLOW_S3_ENDPOINT_URL"]'
    )
    lines = [
        '# The services are up. In another shell: eval "$(docflow up --env)", or paste:',
        exports,
        "",
        f"# Drop a file in the bucket; the sensor picks it up (a folder under {settings.prefix} = a tenant):",
        f"aws{aws_endpoint} s3 cp invoice.pdf s3://{settings.bucket}/{key}",
        f'python -c \'import boto3, os; boto3.client("s3", {boto_endpoint})'
        f'.upload_file("invoice.pdf", "{settings.bucket}", "{key}")\'',
    ]
    click.echo("\n".join(lines))


# What `docflow up` prints: the services' URLs, the S3 credentials and Dagster's instance (its home and the
# database URL its dagster.yaml reads), so other tools in a new shell reach the same instance.
UP_VARIABLES = (
    "DOCFLOW_DATABASE_URL",
    "DOCFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "DAGSTER_HOME",
    "DOCFLOW_DAGSTER_DATABASE_URL",
)


@cli.command()
def down() -> None:
    """Stop the embedded services started by `docflow up`, `docflow run` or `make dev`."""
    from docflow.embedded import stop_services

    stopped = stop_services(get_settings())
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--tenant", default=None, help="Tenant the documents belong to (default: DOCFLOW_DEFAULT_TENANT)."
)
@click.option("--force", is_flag=True, help="Re-process documents already done with the same configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(paths: tuple[Path, ...], tenant: str | None, force: bool, as_json: bool) -> None:
    """Upload files/folders, materialize all five assets for them, wait, and print a summary."""
    from docflow.runner import run_paths

    settings = get_settings()
    summary = run_paths(
        list(paths), tenant or settings.default_tenant, settings, force=force, progress=_progress
    )
    _finish(summary, as_json, "done", "failed")


@cli.command()
@click.option("--failed", is_flag=True, required=True, help="Retry every failed document (required).")
@click.option("--tenant", default=None, help="Only this tenant's failed documents.")
@click.option("--json", "as_json", is_flag=True)
def retry(failed: bool, tenant: str | None, as_json: bool) -> None:
    """Process the failed documents again (after a fix or an outage); exit 1 if any still fails."""
    from docflow.runner import retry_failed

    summary = retry_failed(get_settings(), tenant, progress=_progress)
    _finish(summary, as_json, "recovered", "still failing")


@cli.command()
@click.argument("doc_ids", nargs=-1, required=True)
@click.option(
    "--job",
    type=click.Choice(["process_documents", "reextract_documents", "reembed_documents"]),  # defs/jobs.py
    default="process_documents",
    show_default=True,
    help="All five assets, or fields then embeddings again, or embeddings again.",
)
@click.option("--json", "as_json", is_flag=True)
def reprocess(doc_ids: tuple[str, ...], job: str, as_json: bool) -> None:
    """Process documents again by id, whatever their status; an archived document (partition retention)
    gets its Dagster partition back first. Exit 1 if any fails."""
    from docflow.runner import reprocess as run_again

    _finish(run_again(get_settings(), doc_ids, job, progress=_progress), as_json, "done", "failed")


@cli.command()
@click.argument("doc_ids", nargs=-1, required=True)
def restore(doc_ids: tuple[str, ...]) -> None:
    """Give archived documents (partition retention) their Dagster partitions back without running them,
    e.g. to select them for a backfill in the UI."""
    from docflow.runner import restore_partitions

    restored = restore_partitions(get_settings(), doc_ids)
    click.echo(
        f"{len(restored)} archived documents restored, {len(doc_ids) - len(restored)} were not archived"
    )


@cli.command()
@click.argument("doc_id", required=False)
@click.option(
    "--failed", is_flag=True, help="Only the dead letters: failed documents, and stranded ones (no run left)."
)
@click.option("--tenant", default=None)
@click.option("--json", "as_json", is_flag=True)
def status(doc_id: str | None, failed: bool, tenant: str | None, as_json: bool) -> None:
    """Documents with their status (pending, running, done, failed), type and error."""
    from docflow.runner import dead_letters, summarize

    rt = runtime()
    if failed:
        docs = [d for d in dead_letters(rt, tenant) if doc_id in (None, d.doc_id)]
    else:
        docs = rt.store.list_documents(doc_id=doc_id, tenant=tenant)
    if doc_id and not docs:
        from docflow.store.rekey import renamed_to

        if renamed := renamed_to(rt.store, doc_id):
            raise click.ClickException(f"no document {doc_id!r}: it was renamed {renamed!r} (docflow rekey)")
        raise click.ClickException(f"no document {doc_id!r}")
    rows = summarize(rt, docs)
    if as_json:
        out = [r.model_dump() for r in rows]
        if doc_id:  # one document: an archived one's lineage summary (its Dagster events are gone)
            from docflow.store.retention import lineage

            for row in out:
                if row.get("archived"):
                    row["lineage"] = lineage(rt.store, row["doc_id"])
        _echo_json(out)
    else:
        _print_table(rows)
        if not doc_id:
            _print_archived_count(rt, tenant)
            _print_webhook_counts(rt, tenant)


def _print_archived_count(rt, tenant: str | None) -> None:
    from docflow.store.retention import archived_count

    if n := archived_count(rt.store, tenant):
        click.echo(
            f"{n} documents archived: no Dagster partition (partition retention); `docflow reprocess DOC_ID` "
            "processes one again"
        )


@cli.command("types")
@click.option("--json", "as_json", is_flag=True)
def types_(as_json: bool) -> None:
    """The document types (DOCFLOW_RULES_PATH, else data/doc_types.yaml): schema file, fields, typed view
    and local extractor of each."""
    from docflow.backends.extract.local import BUILT_IN
    from docflow.schemas import load_types

    registry = load_types(get_settings().rules_path)
    rows = []
    for t in registry.types.values():
        if t.name in BUILT_IN:
            extractor = "built-in"
        elif t.own_schema and t.fields:
            extractor = "generic"  # by the schema's labels and aliases
        else:
            extractor = "key-values"
        rows.append(
            {
                "name": t.name,
                "description": t.description,
                "schema_file": str(t.schema_file) if t.schema_file else None,
                "schema": t.model.__name__,
                "schema_version": t.model.schema_version,
                "fields": [
                    {"name": f.name, "kind": f.kind, "required": f.required, "aliases": list(f.aliases)}
                    for f in t.fields
                ],
                "view": f"docflow.{t.view}" if t.view else None,
                "extractor": extractor,
            }
        )
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        fields = ", ".join(f["name"] for f in r["fields"]) or "key_values"
        click.echo(f"{r['name']:<20} {r['extractor']:<10} {r['view'] or '-':<30} {fields}")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list the documents that would be renamed.")
@click.option("--while-running", is_flag=True, help="Rename even while runs are queued or running.")
def rekey(dry_run: bool, while_running: bool) -> None:
    """Rename documents registered under the old ids (<tenant>-<32 hex>) to ids that name the file, in
    Postgres and in Dagster (partitions and materializations). Safe to run again; see docs/operations.md."""
    from docflow.orchestration import rekey as rekeying
    from docflow.orchestration.instance import dagster_instance

    rt = runtime(get_settings())
    if dry_run:
        for r in rekeying.plan(rt.store):
            click.echo(f"{r.status:<8} {r.old_id} -> {r.new_id}")
        return
    instance = dagster_instance(rt.settings)
    try:
        report = rekeying.rekey(rt.store, instance, while_running=while_running, progress=_progress)
    except DocflowError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())


@cli.command()
@click.argument("query")
@click.option("--k", default=10, show_default=True, help="Number of hits.")
@click.option("--tenant", default=None)
@click.option("--type", "doc_type", default=None, help="Only documents of this type.")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="Document date on/after.")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Document date on/before.")
@click.option("--field", "field_filters", multiple=True, metavar="NAME=TEXT", help="Field contains TEXT.")
@click.option("--vendor", default=None, help="Shorthand for --field vendor_name=TEXT.")
@click.option("--amount-min", type=float, default=None, help="Document amount (total) at least.")
@click.option("--amount-max", type=float, default=None, help="Document amount (total) at most.")
@click.option("--rerank/--no-rerank", default=None, help="Override DOCFLOW_RERANK for this query.")
@click.option("--chunks", is_flag=True, help="Return chunks (several per document) instead of documents.")
@click.option("--json", "as_json", is_flag=True)
def search(
    query: str,
    k: int,
    tenant: str | None,
    doc_type: str | None,
    date_from,
    date_to,
    field_filters: tuple[str, ...],
    vendor: str | None,
    amount_min: float | None,
    amount_max: float | None,
    rerank: bool | None,
    chunks: bool,
    as_json: bool,
) -> None:
    """Hybrid (vector + full-text + name) search over processed documents: one hit per document (its best
    chunk), or chunks with --chunks."""
    from docflow.retrieval import search as do_search

    fields = {}
    for item in field_filters:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=TEXT, got {item!r}", param_hint="--field")
        fields[name.strip()] = value
    if vendor:
        fields["vendor_name"] = vendor
    hits = do_search(
        runtime(),
        query,
        k=k,
        tenant=tenant,
        doc_type=doc_type,
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        fields=fields,
        amount_min=amount_min,
        amount_max=amount_max,
        rerank=False if rerank is False else None,
        chunks=chunks,
    )
    if as_json:
        _echo_json(
            [
                h.model_dump(
                    include={"doc_id", "key", "filename", "doc_type", "chunk_index", "score", "text"}
                )
                for h in hits
            ]
        )
        return
    if not hits:
        click.echo("no results")
    for i, h in enumerate(hits, 1):
        pages = f" p.{h.page_start}" if h.page_start else ""
        click.echo(f"{i:>2}. {h.score:.4f}  {h.filename}{pages}  [{h.doc_type}]  {h.doc_id}#{h.chunk_index}")
        click.echo("    " + " ".join(h.text.split())[:200])


@cli.command()
@click.argument("question")
@click.option("--k", default=5, show_default=True, help="Passages to ground the answer on.")
@click.option("--tenant", default=None)
@click.option("--type", "doc_type", default=None, help="Only documents of this type.")
@click.option("--json", "as_json", is_flag=True)
def ask(question: str, k: int, tenant: str | None, doc_type: str | None, as_json: bool) -> None:
    """Answer a question from the documents, with sources (extractive without an LLM)."""
    from docflow.retrieval import ask as do_ask

    answer = do_ask(runtime(), question, k=k, tenant=tenant, doc_type=doc_type)
    if as_json:
        _echo_json(answer.model_dump())
        return
    label = "extractive (passages, not a generated answer)" if answer.extractive else "answer"
    click.echo(f"{label}:\n{answer.answer}\n\nsources:")
    for h in answer.sources:
        click.echo(f"  - {h.filename} p.{h.page_start or '?'} ({h.doc_id}#{h.chunk_index})")


@cli.command(name="vector-index")
@click.option("--type", "doc_types", multiple=True, required=True, help="A doc type (repeatable).")
@click.option("--memory", default="1GB", show_default=True, help="maintenance_work_mem for the build.")
def vector_index(doc_types: tuple[str, ...], memory: str) -> None:
    """Build an HNSW index of a doc type's chunks of its own: searches filtered on that type (and a tenant,
    dates or amounts) then probe it rather than the whole table's graph. Worth it for large, common types;
    each index costs disk and write time in proportion to the type's chunks (docs/architecture.md)."""
    from docflow import backends
    from docflow.store import bulk

    rt = runtime()
    dimension = backends.get_embedder(rt.settings).dimension
    for doc_type in doc_types:
        started = time.monotonic()
        click.echo(f"building the {doc_type} index ({dimension}-d vectors)...", err=True)
        bulk.build_vector_index(rt.store, dimension, memory=memory, doc_type=doc_type)
        click.echo(f"{doc_type}: built in {time.monotonic() - started:.1f} s")


@cli.command()
@click.option("--tenant", default=None, help="Only this tenant [default: every tenant].")
@click.option(
    "--from", "day_from", type=click.DateTime(["%Y-%m-%d"]), help="First UTC day [default: 29 days ago]."
)
@click.option("--to", "day_to", type=click.DateTime(["%Y-%m-%d"]), help="Last UTC day [default: today].")
@click.option("--json", "as_json", is_flag=True, help="Per tenant and day, with each backend's figures.")
def usage(tenant: str | None, day_from, day_to, as_json: bool) -> None:
    """What the pipeline did per tenant and UTC day: documents, pages, bytes, OCR pages, remote calls,
    tokens, pages billed and an estimated cost (prices from data/prices.yaml)."""
    from docflow.store.usage import daily, default_range

    start, end = default_range(day_from and day_from.date(), day_to and day_to.date())
    if start > end:
        raise click.BadParameter(f"--from {start} is after --to {end}")
    days = daily(runtime().store, tenant, start, end)
    if as_json:
        _echo_json(days)
        return
    columns = ("day", "tenant", "documents", "pages", "bytes", "ocr_pages", "remote_calls")
    columns += ("input_tokens", "output_tokens", "pages_billed", "cost_usd")
    rows = [[str(d[c]) for c in columns] for d in days]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for row in [list(columns), *rows]:
        click.echo(
            "  ".join(
                v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    if not rows:
        click.echo(f"(no usage from {start} to {end})")


@cli.command(name="eval")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here."
)
@click.option("--force", is_flag=True, help="Re-process documents already done with the same configuration.")
@click.option("--folder", "folders", multiple=True, help="Only documents of this source folder (repeatable).")
@click.option("--type", "doc_types", multiple=True, help="Only documents of this true type (repeatable).")
@click.option(
    "--reuse-parse",
    is_flag=True,
    help="Keep stored parses: re-run classification and extraction only.",
)
@click.option("--workers", type=int, default=None, help="Processes for the steps [default: one per core].")
@click.option(
    "--folds",
    type=int,
    default=0,
    help="Also score the learned classifier on K held-out folds.",
)
def eval_(
    manifest: Path,
    json_out: Path | None,
    force: bool,
    folders: tuple[str, ...],
    doc_types: tuple[str, ...],
    reuse_parse: bool,
    workers: int | None,
    folds: int,
) -> None:
    """Process a manifest's documents and report quality against its truth."""
    from docflow.evaluation import run_eval

    report = run_eval(
        manifest,
        get_settings(),
        force=force or reuse_parse,
        progress=_progress,
        folders=folders,
        doc_types=doc_types,
        reuse_parse=reuse_parse,
        workers=workers,
        folds=folds,
    )
    if json_out:
        json_out.write_text(json.dumps(report, indent=2, default=str))
        click.echo(f"report written to {json_out}")
    for name in ("classification", "fields"):
        section = report.get(name) or {}
        click.echo(f"{name}: accuracy {section.get('accuracy')} over {section.get('n')}")
    if located := (report.get("fields") or {}).get("located"):
        click.echo(
            f"correct values with a box holding them: {located['share']} of {located['correct']} "
            f"({located['share_with_layout']} of {located['correct_with_layout']} in documents with boxes)"
        )
    for key in ("parse", "retrieval"):
        if key in report:
            summary = {k: v for k, v in report[key].items() if not isinstance(v, dict | list)}
            click.echo(f"{key}: {summary}")
    if "classification_folds" in report:
        f = report["classification_folds"]
        click.echo(f"classification on held-out folds ({f['folds']}): accuracy {f['accuracy']} over {f['n']}")
    for group in ("by_folder", "by_type"):
        click.echo(f"\n{group.removeprefix('by_')}:")
        _print_summaries(report[group])
    click.echo(f"{report['n_documents']} documents, {report['failed']} failed, {report['seconds']} s")


def _print_summaries(groups: dict[str, dict]) -> None:
    columns = ("n", "classification", "fields", "text_similarity", "table_cell_recall", "recall_at_5")
    click.echo(f"  {'':24}" + "".join(f"{c[:14]:>15}" for c in columns))
    for name, row in groups.items():
        cells = "".join(f"{'-' if row[c] is None else row[c]!s:>15}" for c in columns)
        click.echo(f"  {name[:24]:24}{cells}")


@cli.command()
@click.argument("doc_id")
@click.argument("corrections", nargs=-1, metavar="[FIELD=VALUE]...")
@click.option("--confirm", "confirms", multiple=True, metavar="FIELD", help="A path whose value is right.")
@click.option("--unreview", multiple=True, metavar="FIELD", help="Take a path's review back.")
@click.option("--by", "reviewer", default=None, help="Who reviewed [default: $USER].")
@click.option("--json", "as_json", is_flag=True, help="Print the fields and the reviews as JSON.")
def fix(
    doc_id: str,
    corrections: tuple[str, ...],
    confirms: tuple[str, ...],
    unreview: tuple[str, ...],
    reviewer: str | None,
    as_json: bool,
) -> None:
    """Correct (FIELD=VALUE) or confirm (--confirm FIELD) a document's extracted values; they win over any
    later re-extraction. FIELD is a path: total_amount, line_items.0.amount, key_values.Date. VALUE is
    JSON when it parses as a list, an object, true, false or null (null removes the value), else text
    (numbers too: the schema makes a number of it where the field is one). Prints the fields after review."""
    from docflow.store import reviews

    values: dict[str, object] = {}
    for item in corrections:
        path, eq, text = item.partition("=")
        if not eq or not path.strip():
            raise click.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint="FIELD=VALUE")
        values[path.strip()] = _fix_value(text)
    rt = runtime()
    if unreview:
        done = reviews.remove(rt.store, doc_id, unreview)
    if values or confirms:
        who = reviewer or os.environ.get("USER") or "cli"
        done = reviews.record(rt.store, doc_id, values, confirms, who, rt.settings.rules_path)
    elif not unreview:
        done = reviews.reviewed(rt.store, doc_id)
    out = {"doc_id": done.doc_id, "doc_type": done.doc_type, "fields": done.fields}
    out["reviews"] = {path: r.out() for path, r in done.reviews.items()}
    if as_json:
        _echo_json(out)
        return
    click.echo(json.dumps(done.fields, indent=2, ensure_ascii=False, default=str))
    for path, r in done.reviews.items():
        was = "" if r.action == "confirm" else f" (extracted: {json.dumps(r.extracted_value, default=str)})"
        value = json.dumps(r.value, default=str)
        click.echo(f"{r.action:<8} {path} = {value}{was}  by {r.reviewer}, {r.reviewed_at:%Y-%m-%d %H:%M}")


def _fix_value(text: str) -> object:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, list | dict | bool) or value is None else text


@cli.command(name="export-truth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tenant", default=None, help="Only this tenant's documents [default: every tenant].")
@click.option("--type", "doc_type", default=None, help="Only documents of this type.")
def export_truth_(out_dir: Path, tenant: str | None, doc_type: str | None) -> None:
    """Write the reviewed documents as an evaluation set (docs/, truth/, manifest.csv in the format of
    ../shared/eval) under OUT_DIR: `docflow eval OUT_DIR/manifest.csv` then scores against the reviews."""
    from docflow.evaluation.truth import export_truth

    exported = export_truth(runtime(), out_dir, tenant, doc_type)
    for e in exported:
        click.echo(f"{e.doc_type:<20} {e.fields} fields  {e.truth_path}")
    click.echo(f"{len(exported)} reviewed documents in {out_dir / 'manifest.csv'}")


@cli.command(name="train-classifier")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the model [default: data/classifier.json].",
)
@click.option("--folds", type=int, default=5, show_default=True, help="Held-out folds to score it on first.")
@click.option("--c", "c", type=float, default=0.5, show_default=True, help="Inverse regularisation strength.")
def train_classifier_(manifest: Path, out: Path | None, folds: int, c: float) -> None:
    """Train the local classifier's learned model on a manifest's labelled documents."""
    from docflow.evaluation import load_manifest
    from docflow.evaluation.folds import train_classifier
    from docflow.settings import data_dir

    settings = get_settings()
    out = out or settings.classifier_model_path or data_dir() / "classifier.json"
    report = train_classifier(load_manifest(manifest), out, settings, k=folds, c=c, progress=_progress)
    if folds:
        click.echo(f"held-out accuracy over {folds} folds: {report['accuracy']} ({report['n']} documents)")
        for group in ("per_type", "per_folder"):
            click.echo(", ".join(f"{k} {v['accuracy']} ({v['n']})" for k, v in report[group].items()))
    click.echo(f"model with {report['features']} features written to {report['model']}")


@cli.command()
@click.option("--docs", default=100, show_default=True, help="Documents for the pipeline sections.")
@click.option("--only", multiple=True, help="Run only these sections (repeatable).")
@click.option(
    "--objects",
    default=100_000,
    show_default=True,
    help="Objects and partitions for the sensor section; the pipeline section runs with at least this many "
    "document partitions registered.",
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report.")
@click.option(
    "--extra",
    "extras",
    multiple=True,
    metavar="KEY=VALUE",
    help="A section's option (repeatable), e.g. search_chunks=1000000 keep_search_rows=1; see the sections.",
)
@click.option(
    "--soak",
    "soak_minutes",
    type=float,
    default=None,
    metavar="MINUTES",
    help="Instead: a soak test of MINUTES (steady uploads, bad files, S3 restarts); reports lost documents.",
)
def bench(
    docs: int,
    only: tuple[str, ...],
    objects: int,
    json_out: Path | None,
    extras: tuple[str, ...],
    soak_minutes: float | None,
) -> None:
    """Measure speed: each registered section (see docflow.bench.SECTIONS)."""
    from docflow.bench import BenchOptions, dumps, run_bench

    if soak_minutes is not None:
        from docflow.bench import machine
        from docflow.bench.soak import soak_section

        options = BenchOptions(docs=docs, extra={"minutes": soak_minutes})
        soak = soak_section(get_settings(), options, progress=_progress)
        text = dumps({"machine": machine(), "soak": soak, "lost": soak["lost"]})
        if json_out:
            json_out.write_text(text)
        click.echo(text)
        if soak["lost"]:
            sys.exit(1)
        return
    extra: dict[str, object] = {"objects": objects}
    for item in extras:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--extra")
        extra[key] = int(value) if value.lstrip("-").isdigit() else value
    options = BenchOptions(docs=docs, extra=extra)
    report = run_bench(get_settings(), options, list(only) or None, progress=_progress)
    text = dumps(report)
    if json_out:
        json_out.write_text(text)
    click.echo(text)


@cli.command()
@click.option("--samples/--no-samples", default=True, help="Upload data/samples when starting.")
@click.option("--port", default=3000, show_default=True, help="Dagster UI port.")
@click.option("--api-port", default=8000, show_default=True, help="HTTP API port (0: no API).")
def dev(samples: bool, port: int, api_port: int) -> None:
    """Embedded services + Dagster UI and daemon (sensor on) + sample documents; Ctrl-C stops it all.

    Dagster runs under `dg dev` (the [tool.dg] project in pyproject.toml) with its services logging errors
    only; the terminal shows the sensor's ticks that found something, and a line per run started and
    finished and per failed document (docflow/devlog.py)."""
    from docflow import devlog
    from docflow.defs.assets import POOLS
    from docflow.orchestration.instance import configure_pools, dagster_env, open_instance

    settings = get_settings()
    env = {**os.environ, **dagster_env(settings)}
    instance = open_instance(env)
    configure_pools(instance, POOLS)
    dg_cli = Path(sys.executable).with_name("dg")
    if not dg_cli.exists():
        raise click.ClickException(f"{dg_cli} is missing: install docflow's dependencies (make setup)")
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix  # dg warns when the project's .venv is not the active environment
    cmd = [str(dg_cli), "dev", "--port", str(port), "--log-level", "error"]
    cmd += ["--code-server-log-level", "error", "--no-check-yaml"]  # no component YAML to check
    click.echo(f"starting Dagster: http://127.0.0.1:{port}  (DAGSTER_HOME={env['DAGSTER_HOME']})")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, start_new_session=True)
    api = _start_api(settings, env, api_port)
    progress = devlog.start(instance, runtime(settings).store, click.echo)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops cleanly, like Ctrl-C
    try:
        if samples:
            _upload_samples(settings)
        proc.wait()
    except KeyboardInterrupt:
        click.echo("\nstopping Dagster...")
    finally:
        progress.set()
        if api is not None and api.poll() is None:
            api.terminate()
            api.wait(timeout=15)
        if proc.poll() is None:
            # dg dev alone: it stops the webserver and the daemon, which stops its run workers (an interrupt
            # sent to the whole group would break into the workers' own exit)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        from docflow.embedded import stop_services

        stopped = stop_services(settings)
        click.echo(f"stopped: {', '.join(['dagster', *stopped])}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="uvicorn worker processes.")
def api(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API: uploads, live progress, search, ask, a web page at / (schema: /openapi.json)."""
    from docflow.api import serve
    from docflow.orchestration.instance import dagster_env

    dagster_env(get_settings())  # starts the embedded services once, before the workers
    serve(host, port, workers)


@cli.command(name="api-key")
@click.argument("tenant")
@click.option("--name", default="", help="A label for the key.")
def api_key(tenant: str, name: str) -> None:
    """Create an API key for TENANT (printed once; only its hash is stored)."""
    from docflow.bucket import safe_tenant
    from docflow.store.tenants import create_api_key

    click.echo(create_api_key(runtime().store, safe_tenant(tenant), name))


@cli.command()
@click.argument("tenant")
@click.option(
    "--docs",
    "docs_per_day",
    type=click.IntRange(min=0),
    help="Set the tenant's new documents per UTC day (0 = DOCFLOW_API_DOCS_PER_DAY).",
)
@click.option(
    "--bytes",
    "bytes_per_day",
    type=click.IntRange(min=0),
    help="Set the tenant's new bytes per UTC day (0 = DOCFLOW_API_BYTES_PER_DAY).",
)
@click.option("--json", "as_json", is_flag=True)
def quota(tenant: str, docs_per_day: int | None, bytes_per_day: int | None, as_json: bool) -> None:
    """TENANT's daily quota and today's use, counted at every entrance (API, bucket, docflow run); --docs and
    --bytes set the tenant's own limits. `docflow retry --failed` then runs what the quota refused."""
    from docflow.bucket import safe_tenant
    from docflow.store.quotas import Limits, set_own_limits
    from docflow.store.tenants import TenantStore, usage

    rt = runtime()
    tenant = safe_tenant(tenant)
    if docs_per_day is not None or bytes_per_day is not None:
        set_own_limits(rt.store, tenant, docs_per_day, bytes_per_day)
    today = usage(TenantStore(rt.store.url, tenant), Limits.of(rt.settings))
    if as_json:
        _echo_json({"tenant": tenant, **today})
        return
    click.echo(
        f"{tenant}, {today['day']} (UTC): {today['documents']} of {today['docs_per_day']} new documents, "
        f"{today['bytes']} of {today['bytes_per_day']} bytes"
    )


@cli.group()
def webhooks() -> None:
    """Completion webhooks: endpoints each document's done/failed event is POSTed to."""


@webhooks.command(name="add")
@click.argument("url")
@click.option("--tenant", default=None, help="The tenant whose documents are reported [default tenant].")
def webhooks_add(url: str, tenant: str | None) -> None:
    """Register URL; prints the endpoint's id and signing secret (shown only now)."""
    from docflow.bucket import safe_tenant
    from docflow.netguard import parse_networks
    from docflow.store.webhooks import create_endpoint
    from docflow.webhooks import check_url

    rt = runtime()
    try:
        check_url(url, parse_networks(rt.settings.api_fetch_allow_networks))
    except DocflowError as exc:
        raise click.ClickException(str(exc)) from exc
    endpoint = create_endpoint(rt.store, safe_tenant(tenant or rt.settings.default_tenant), url)
    click.echo(f"id: {endpoint.id}\nsecret: {endpoint.secret}")


@webhooks.command(name="list")
@click.option("--tenant", default=None)
@click.option("--json", "as_json", is_flag=True)
def webhooks_list(tenant: str | None, as_json: bool) -> None:
    """Endpoints with their deliveries: delivered, pending, dead, and the last error."""
    from docflow.store.webhooks import list_endpoints

    rows = list_endpoints(runtime().store, tenant)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        state = " (disabled)" if r["disabled"] else ""
        click.echo(
            f"{r['id']}  {r['tenant']}  {r['url']}{state}\n"
            f"    {r['delivered']} delivered, {r['pending']} pending, {r['dead']} dead"
            + (f"; last error: {r['last_error']}" if r["last_error"] else "")
        )


@webhooks.command(name="rm")
@click.argument("endpoint_id")
@click.option("--tenant", default=None, help="The endpoint's tenant [any].")
def webhooks_rm(endpoint_id: str, tenant: str | None) -> None:
    """Remove an endpoint (its pending deliveries are dropped)."""
    from docflow.store.webhooks import delete_endpoint

    if not delete_endpoint(runtime().store, endpoint_id, tenant):
        raise click.ClickException(f"no webhook endpoint {endpoint_id!r}")
    click.echo(f"removed {endpoint_id}")


@webhooks.command(name="retry")
@click.option("--dead", is_flag=True, required=True, help="Send the dead deliveries again (required).")
@click.option("--tenant", default=None, help="Only this tenant's.")
@click.option("--endpoint", "endpoint_id", type=click.UUID, default=None, help="Only this endpoint's.")
def webhooks_retry(dead: bool, tenant: str | None, endpoint_id) -> None:
    """Give dead deliveries a fresh set of attempts (after the receiver is fixed); the sensor sends them."""
    from docflow.store.webhooks import redeliver_dead

    endpoint = str(endpoint_id) if endpoint_id else None
    click.echo(f"{redeliver_dead(runtime().store, tenant, endpoint)} deliveries queued again")


def _print_webhook_counts(rt, tenant: str | None) -> None:
    from docflow.store.webhooks import delivery_counts

    for r in delivery_counts(rt.store, tenant):
        counts = f"{r['delivered']} delivered, {r['pending']} pending, {r['dead']} dead"
        click.echo(f"webhooks {r['tenant']}: {counts}")


def _start_api(settings, env: dict[str, str], port: int) -> subprocess.Popen | None:
    if not port:
        return None
    from docflow.api.server import development_key

    key = development_key(settings)
    cmd = [sys.executable, "-m", "docflow.cli", "api", "--port", str(port)]
    api = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, start_new_session=True)
    click.echo(f"starting the API: http://127.0.0.1:{port}  (schema: /docs)")
    click.echo(f"DOCFLOW_API_KEY={key}")
    return api


def _upload_samples(settings) -> None:
    from docflow import ingest

    rt = runtime(settings)
    time.sleep(2)  # let the daemon start its sensor loop first, so the UI shows the runs arrive
    folder = REPO_ROOT / "data" / "samples"
    uploads = [
        ingest.plan_upload(f, root, settings.prefix, settings.default_tenant)
        for f, root in ingest.iter_files([folder])
    ]
    for up in uploads:
        rt.bucket.upload_file(up.path, up.key, sha256=up.sha256)
    click.echo(
        f"uploaded {len(uploads)} sample documents to s3://{rt.settings.bucket}/{settings.prefix}; "
        "the sensor picks them up within seconds"
    )


def _finish(summary, as_json: bool, done_label: str, failed_label: str) -> None:
    """Print a run's per-document summary and counts (stderr with --json); exit 1 if any did not finish."""
    if as_json:
        _echo_json([d.model_dump() for d in summary])
    else:
        _print_table(summary)
    failed = [d for d in summary if d.status != "done"]
    click.echo(f"{len(summary) - len(failed)} {done_label}, {len(failed)} {failed_label}", err=as_json)
    sys.exit(1 if failed else 0)


def _progress(message: str) -> None:
    click.echo(message, err=True)  # stdout stays clean for --json


def _print_table(rows) -> None:
    for r in rows:
        doc_type = r.doc_type or "-"
        line = f"{r.status:<8} {doc_type:<20} {r.doc_id}  {r.filename}"
        if r.archived:
            line += "  (archived)"
        if r.error:
            line += f"\n         error: {r.error}"
        click.echo(line)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except DocflowError as exc:
        click.echo(f"docflow: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
