"""Finding new documents in the bucket and putting files into it. No Dagster here: the sensor and the CLI
call these functions and turn the result into partitions and runs.

The scan cursor is a last-modified watermark plus the (key, etag) pairs seen inside a slack window behind
it. S3's Last-Modified is when an upload *started*, so a slow upload can appear after newer objects were
listed; the window (SLACK) catches those, and the seen set keeps them from being requested twice.
"""

import hashlib
import itertools
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from docflow.bucket import (
    Bucket,
    Hashed,
    ObjectInfo,
    filename_of,
    make_doc_id,
    priority_of,
    safe_tenant,
    tenant_of,
)
from docflow.errors import BackendUnavailable, NotFound
from docflow.models import Document
from docflow.store import Store, pending
from docflow.store.db import Admitted
from docflow.store.quotas import Limits

SLACK = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScanCursor(BaseModel):
    since: datetime = _EPOCH  # watermark: every object older than since - SLACK has been handled
    seen: dict[str, tuple[str, float]] = Field(default_factory=dict)  # key -> (etag, last_modified ts)
    # A big bucket is listed in passes over several ticks (a time budget per tick); during a pass:
    after: str = ""  # the last key listed so far ("" = the next tick starts a new pass)
    pass_started: datetime | None = None  # when the pass began (sensor clock)
    pass_high: datetime = _EPOCH  # newest object handled in the pass
    pass_low: datetime | None = None  # oldest candidate left unhandled in the pass (bounded work per tick)

    @classmethod
    def load(cls, raw: str | None) -> "ScanCursor":
        return cls.model_validate_json(raw) if raw else cls()

    def dump(self) -> str:
        return self.model_dump_json()


@dataclass(frozen=True)
class NewDocument:
    doc_id: str
    key: str
    etag: str
    tenant: str
    priority: int = 0  # the run's dagster/priority: the API's upload option, or the object's metadata or key
    run_key: str = ""  # "" = <doc_id>:<etag>


@dataclass
class ScanResult:
    new: list[NewDocument]  # registered now: request a run for each
    aliases: int  # objects whose bytes were already a document (no run)
    skipped: list[str]  # keys that could not be handled this tick (will be retried), with reasons
    cursor: ScanCursor
    remaining: int  # candidates left for the next tick (bounded work per tick)
    over_quota: list[str] = field(default_factory=list)  # registered as failed (quota exceeded): no run


def scan(
    bucket: Bucket,
    store: Store,
    cursor: ScanCursor,
    prefix: str,
    default_tenant: str = "default",
    max_objects: int = 500,
    max_hash_bytes: int = 2 * 1024**3,
    list_budget_s: float | None = None,
    limits: Limits | None = None,
    work_budget_s: float | None = None,
) -> ScanResult:
    """One sensor tick: register the documents behind new objects under `prefix`, each new one counted
    against its tenant's daily quota (`limits`: the defaults; None counts nothing).

    The listing stops after about `list_budget_s` (at a page boundary; None = no limit) and the next tick
    goes on from there, so a tick stays short however many objects the bucket holds; a small bucket is
    listed whole each tick. New objects are taken in turn from each tenant (oldest first within a tenant)
    and hashed and registered for about `work_budget_s` (None = no limit): a tenant's bulk load is
    registered over several short ticks, and another tenant's upload waits for about one of them."""
    floor = cursor.since - SLACK
    try:
        listed, after = _list_some(bucket, prefix, cursor.after, list_budget_s)
    except BackendUnavailable as exc:  # S3 down: nothing this tick, the cursor stays, the next tick retries
        return ScanResult([], 0, [f"listing {prefix!r}: {exc}"], cursor, 0)
    candidates = _fair_order(
        [
            o
            for o in listed
            if o.last_modified >= floor
            and cursor.seen.get(o.key, ("",))[0] != o.etag
            and not o.key.endswith("/")
        ],
        prefix,
        default_tenant,
    )
    started = time.monotonic()
    handled: list[ObjectInfo] = []
    skipped: list[str] = []
    new: list[NewDocument] = []
    over_quota: list[str] = []
    aliases = 0
    hashed_bytes = 0
    todo = deque(candidates[:max_objects])
    while todo and not skipped and hashed_bytes <= max_hash_bytes:
        if work_budget_s is not None and handled and time.monotonic() - started > work_budget_s:
            break  # the rest next tick: a bulk load never holds the other tenants' uploads for long
        batch: list[ObjectInfo] = []  # hashed together: at most a chunk, about max_hash_bytes in all
        while todo and len(batch) < HASH_CHUNK and hashed_bytes <= max_hash_bytes:
            batch.append(todo.popleft())
            # an upper bound: an object with a sha256 in its metadata is not read
            hashed_bytes += batch[-1].size
        with ThreadPoolExecutor(HASH_WORKERS) as pool:  # S3 round trips in parallel, results in order
            outcomes = list(pool.map(lambda o: _sha256_of(bucket, o.key), batch))
        for obj, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, NotFound):
                continue  # deleted since the listing: nothing to do
            if isinstance(outcome, BackendUnavailable):
                skipped.append(f"{obj.key}: {outcome}")
                break  # S3 trouble: stop; the watermark stays below this object and the next tick retries
            handled.append(obj)
            tenant = tenant_of(obj.key, prefix, default_tenant)
            filename = filename_of(obj.key)
            doc = Document(
                doc_id=make_doc_id(tenant, outcome.sha256, filename),
                tenant=tenant,
                bucket=bucket.name,
                key=obj.key,
                etag=obj.etag,
                sha256=outcome.sha256,
                size=obj.size,
                filename=filename,
            )
            # bytes known under another name keep their id (and were counted when they were new)
            doc_id, is_new, refused = store.register_counted(doc, limits)
            if refused:
                over_quota.append(doc_id)
            elif is_new:
                priority = priority_of(obj.key, outcome.metadata)
                new.append(NewDocument(doc_id, obj.key, obj.etag, tenant, priority))
            elif (queued := registered_for_sensor(store, doc_id, obj.etag)) is not None:
                new.append(NewDocument(doc_id, obj.key, obj.etag, tenant, *queued))
            else:
                aliases += 1
            store.move_key(obj.key, doc_id)  # new bytes under an old key supersede the old document
    handled_keys = {o.key for o in handled}
    unhandled = [o for o in candidates if o.key not in handled_keys]
    advanced = _advance(cursor, handled, unhandled, after)
    return ScanResult(new, aliases, skipped, advanced, len(unhandled), over_quota)


def _list_some(
    bucket: Bucket, prefix: str, after: str, budget_s: float | None
) -> tuple[list[ObjectInfo], str]:
    """Objects under `prefix` after the key `after`, for about `budget_s` seconds (whole pages), and the
    key to go on from next time ("" when the listing reached the end)."""
    started = time.monotonic()
    listed: list[ObjectInfo] = []
    for o in bucket.list(prefix, start_after=after):
        listed.append(o)
        if budget_s is not None and len(listed) % LIST_PAGE == 0 and time.monotonic() - started > budget_s:
            return listed, o.key
    return listed, ""


LIST_PAGE = 1000  # keys per ListObjectsV2 page


HASH_WORKERS = 8  # concurrent HEAD/GET requests while hashing a tick's objects (boto3's pool holds 10)
HASH_CHUNK = 4 * HASH_WORKERS  # objects hashed together between two looks at the tick's work budget


def _fair_order(objects: list[ObjectInfo], prefix: str, default_tenant: str) -> list[ObjectInfo]:
    """Each tenant's objects oldest first, the tenants taken in turn (the one with the oldest first)."""
    by_tenant: dict[str, list[ObjectInfo]] = {}
    for o in sorted(objects, key=lambda o: (o.last_modified, o.key)):
        by_tenant.setdefault(tenant_of(o.key, prefix, default_tenant), []).append(o)
    rounds = itertools.zip_longest(*by_tenant.values())
    return [o for round_ in rounds for o in round_ if o is not None]


def _sha256_of(bucket: Bucket, key: str) -> Hashed | NotFound | BackendUnavailable:
    try:
        return bucket.sha256_of(key)
    except (NotFound, BackendUnavailable) as exc:
        return exc


def registered_for_sensor(store: Store, doc_id: str, etag: str) -> tuple[int, str] | None:
    """(priority, run key) of a pending document the API registered before writing its object (its run is
    the sensor's to request), else None. The run key carries the registration time, so bytes deleted and
    uploaded again are run again, and a repeated listing of the same upload is not."""
    found = pending.awaiting_sensor(store, doc_id)
    if found is None:
        return None
    priority, registered = found
    return priority, f"{doc_id}:{etag}:{registered}"


def _advance(
    cursor: ScanCursor, handled: Sequence[ObjectInfo], unhandled: Sequence[ObjectInfo] = (), after: str = ""
) -> ScanCursor:
    """The cursor after a tick. The watermark moves only when a pass over the listing ends, and never past
    the pass's start (objects written behind the listing meanwhile), nor past a candidate left unhandled."""
    seen = dict(cursor.seen)
    for o in handled:
        seen[o.key] = (o.etag, o.last_modified.timestamp())
    pass_started = cursor.pass_started or datetime.now(UTC)
    pass_high = max([cursor.pass_high, *(o.last_modified for o in handled)])
    lows = [t for t in [cursor.pass_low, *(o.last_modified for o in unhandled)] if t is not None]
    pass_low = min(lows) if lows else None
    if after:  # the pass goes on next tick: keep the watermark
        floor = (cursor.since - SLACK).timestamp()
        return ScanCursor(
            since=cursor.since,
            seen={k: v for k, v in seen.items() if v[1] >= floor},
            after=after,
            pass_started=pass_started,
            pass_high=pass_high,
            pass_low=pass_low,
        )
    since = max(cursor.since, min([pass_high, pass_started, *([pass_low] if pass_low else [])]))
    floor = (since - SLACK).timestamp()
    return ScanCursor(since=since, seen={k: v for k, v in seen.items() if v[1] >= floor})


# --- putting files into the bucket (docflow run, make dev, the API later) ---------------------------


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    sha256: str
    doc_id: str
    tenant: str
    size: int


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """(file, the folder it was given under) for files and folders, recursively, hidden files skipped."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    yield f, p
        elif p.is_file():
            yield p, p.parent
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")


def plan_upload(path: Path, root: Path, prefix: str, tenant: str) -> Upload:
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    tenant = safe_tenant(tenant)
    relative = path.relative_to(root).as_posix() if path != root else path.name
    return Upload(
        path=path,
        key=f"{prefix}{tenant}/{relative}",
        sha256=sha256,
        doc_id=make_doc_id(tenant, sha256, path.name),
        tenant=tenant,
        size=len(data),
    )


def upload(bucket: Bucket, store: Store, up: Upload, limits: Limits | None = None) -> Admitted:
    """Register the document (pending) then write the object. Returns the id the bytes are registered under
    (`up.doc_id` unless the tenant has them under another name already), whether they are new, and the
    quota's refusal when a new document is over its tenant's daily quota (`limits`; None counts nothing):
    it is registered as failed and its object written all the same, for `docflow retry --failed` later.

    Registering first means a sensor tick that lists the object finds it known and requests no second run.
    """
    doc = Document(
        doc_id=up.doc_id,
        tenant=up.tenant,
        bucket=bucket.name,
        key=up.key,
        sha256=up.sha256,
        size=up.size,
        filename=up.path.name,
    )
    registered = store.register_counted(doc, limits)
    bucket.upload_file(up.path, up.key, sha256=up.sha256)
    return registered


# --- reconciliation: objects deleted from the bucket, superseded documents ---------------------------

GRACE = timedelta(minutes=10)  # uploads register before they write: never judge a document younger than this


class ReconcileRefused(BackendUnavailable):
    """The listing does not look complete or sane; deleting on it could destroy good documents."""


@dataclass
class Reconciliation:
    deleted_objects: list[str]  # documents whose every key is gone from the bucket
    superseded: list[str]  # documents replaced by new bytes under their key, successor finished
    listed: int


def expected_in_listing(doc: dict, bucket: str, prefix: str) -> bool:
    """Whether a listing of `prefix` in `bucket` must show the document's objects (a `document_keys` row): a
    document of another bucket (e.g. the sensor bench's) is never missing from this one."""
    return doc["bucket"] == bucket and bool(doc["keys"]) and all(k.startswith(prefix) for k in doc["keys"])


def reconcile(
    bucket: Bucket, store: Store, prefix: str, max_fraction: float = 0.2, now: datetime | None = None
) -> Reconciliation:
    """Find documents to remove. Raises ReconcileRefused rather than act on a partial or suspicious listing:
    a listing that fails part-way raises (BackendUnavailable) before anything is decided, and a listing that
    would remove more than `max_fraction` of the documents (an empty bucket, a wrong prefix) is refused."""
    listed = {o.key for o in bucket.list(prefix)}  # all pages or an exception: never a partial set
    cutoff = (now or datetime.now(UTC)) - GRACE
    docs = [d for d in store.document_keys() if expected_in_listing(d, bucket.name, prefix)]
    gone = [
        d["doc_id"] for d in docs if not any(k in listed for k in d["keys"]) and d["created_at"] <= cutoff
    ]
    if docs and len(gone) > max(3, max_fraction * len(docs)):
        raise ReconcileRefused(
            f"refusing to delete {len(gone)} of {len(docs)} documents: the listing of {prefix!r} "
            f"({len(listed)} objects) looks incomplete; delete them explicitly if this is intended"
        )
    return Reconciliation(gone, store.removable_superseded(), len(listed))
