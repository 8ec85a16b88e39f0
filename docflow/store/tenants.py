"""Tenants' Postgres access for the HTTP service: a tenant-bound store (row-level security), API keys, daily
quotas with the upload registration that counts them, idempotency keys, webhooks and the passthrough queries.

The API connects as the role `docflow_api` (created by migration 0003), to which the row-level security
policies apply; every transaction of a `TenantStore` (and of `ApiDb.run` given a tenant) first sets
`docflow.tenant`, so any query sees only that tenant's rows. Keys are created with the owner's store.
"""

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from docflow.errors import BackendUnavailable, DocflowError
from docflow.models import Document
from docflow.settings import Settings
from docflow.store import quotas
from docflow.store.db import Registered, Store
from docflow.store.quotas import Limits, seconds_to_midnight

API_ROLE = "docflow_api"
KEY_PREFIX = "dfk_"


class QuotaExceeded(DocflowError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyConflict(DocflowError):
    """The key was used for another endpoint, or its first request is still running after the wait."""


def api_database_url(settings: Settings) -> str:
    """DOCFLOW_API_DATABASE_URL, else the docflow database URL with the user `docflow_api` (no password:
    the embedded Postgres trusts local connections; production sets the URL)."""
    if settings.api_database_url:
        return settings.api_database_url
    params = conninfo_to_dict(settings.database_url or "")
    params.pop("password", None)
    params["user"] = API_ROLE
    return make_conninfo(**params)


class TenantStore(Store):
    """A Store whose every transaction is bound to one tenant by row-level security."""

    def __init__(self, url: str, tenant: str) -> None:
        super().__init__(url)
        self.tenant = tenant

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection]:
        with super().tx() as conn:
            conn.execute("SELECT set_config('docflow.tenant', %s, true)", (self.tenant,))
            yield conn


# --- keys ------------------------------------------------------------------------------------------------


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(owner: Store, tenant: str, name: str = "", key: str | None = None) -> str:
    """Register a key for `tenant` (a new random one unless given) and return it; only its hash is stored."""
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    with owner.tx() as conn:
        row = conn.execute(
            """INSERT INTO docflow.api_keys (key_hash, tenant, name) VALUES (%s, %s, %s)
               ON CONFLICT (key_hash) DO UPDATE SET revoked_at = NULL RETURNING tenant""",
            (hash_key(key), tenant, name),
        ).fetchone()
    if row["tenant"] != tenant:
        raise DocflowError("that key already belongs to another tenant")
    return key


def revoke_api_key(owner: Store, key: str) -> None:
    with owner.tx() as conn:
        conn.execute("UPDATE docflow.api_keys SET revoked_at = now() WHERE key_hash = %s", (hash_key(key),))


class ApiDb:
    """The upload hot path's connections (API role): an asyncio pool per process, opened on first use, so an
    upload never waits for a worker thread or a new connection. Each transaction is one round trip."""

    def __init__(self, url: str, max_size: int = 16) -> None:
        self.url = url
        self.max_size = max_size
        self._opening: asyncio.Future[AsyncConnectionPool] | None = None

    async def pool(self) -> AsyncConnectionPool:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        return await asyncio.shield(self._opening)

    async def _open(self) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(
            self.url,
            min_size=min(4, self.max_size),
            max_size=self.max_size,
            kwargs={"row_factory": dict_row, "prepare_threshold": None, "autocommit": True},
            open=False,
            timeout=30,
        )
        await pool.open()
        return pool

    async def run(
        self, tenant: str | None, statement: str, params: dict[str, Any], synchronous: bool = True
    ) -> list[dict[str, Any]]:
        """Run `statement` in one transaction bound to `tenant` (row-level security) and return its rows.

        BEGIN, the tenant setting, the statement and COMMIT go to the server as one query string (the values
        bound client-side, escaped by psycopg), so it runs them back to back: a row lock the statement takes
        is held for the server's time only, never while a busy event loop gets round to sending the COMMIT.
        `synchronous=False` commits without waiting for the WAL flush (the WAL writer flushes it within
        ~0.2 s): only for rows that are rebuilt from the bucket should Postgres crash in that window."""
        head = "BEGIN; "
        if not synchronous:
            head += "SET LOCAL synchronous_commit = off; "
        if tenant is not None:
            head += "SELECT set_config('docflow.tenant', %(_tenant)s, true); "
        script = f"{head}{statement.strip().rstrip(';')}; COMMIT"
        try:
            async with (await self.pool()).connection() as conn:
                cur = psycopg.AsyncClientCursor(conn, row_factory=dict_row)
                try:
                    await cur.execute(script, {**params, "_tenant": tenant})
                except BaseException:
                    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                        await conn.execute("ROLLBACK")
                    raise
                for _ in range(head.count(";")):  # to the statement's own result
                    cur.nextset()
                return await cur.fetchall() if cur.description is not None else []
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(f"Postgres unavailable: {exc}") from exc

    async def close(self) -> None:
        if self._opening is not None and self._opening.done() and not self._opening.exception():
            await self._opening.result().close()
        self._opening = None


class KeyCache:
    """key hash -> tenant, looked up through the SECURITY DEFINER function, trusted for `ttl` seconds.
    Keys are random 256-bit tokens, so a plain sha256 is the right hash (no slow KDF needed); a revoked key
    is refused within `ttl`. Keys in use (seen in the last `keep` seconds) are checked again in the
    background every `ttl / 2`, all in one query, so a request with a known key never waits for the
    database; requests that arrive with the same uncached key while it is being looked up wait for that one
    lookup."""

    def __init__(self, db: ApiDb, ttl: float = 10.0, keep: float = 600.0) -> None:
        self.db = db
        self.ttl = ttl
        self.keep = keep
        self._cache: dict[str, tuple[str | None, float]] = {}  # digest -> (tenant, trusted until)
        self._used: dict[str, float] = {}  # digest -> when a request last brought it
        self._lookups: dict[str, asyncio.Future[str | None]] = {}
        self._refresher: asyncio.Task | None = None

    def cached(self, key: str) -> tuple[bool, str | None]:
        hit = self._cache.get(hash_key(key))
        if hit and hit[1] > time.monotonic():
            return True, hit[0]
        return False, None

    async def tenant(self, key: str) -> str | None:
        digest = hash_key(key)
        now = time.monotonic()
        self._used[digest] = now
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh())
        hit = self._cache.get(digest)
        if hit and hit[1] > now:
            return hit[0]
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = self._lookups[digest] = asyncio.ensure_future(self._lookup(digest))
        return await asyncio.shield(lookup)

    async def _lookup(self, digest: str) -> str | None:
        started = time.monotonic()
        try:
            rows = await self.db.run(
                None, "SELECT docflow.api_key_tenant(%(hash)s) AS tenant", {"hash": digest}
            )
        finally:
            del self._lookups[digest]
        tenant = rows[0]["tenant"] if rows else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (tenant, started + self.ttl)
        return tenant

    async def _refresh(self) -> None:
        while self._used:
            await asyncio.sleep(self.ttl / 2)
            started = time.monotonic()
            for digest in [d for d, at in self._used.items() if started - at > self.keep]:
                del self._used[digest]
                self._cache.pop(digest, None)
            if not self._used:
                return
            try:
                rows = await self.db.run(
                    None,
                    "SELECT h AS hash, docflow.api_key_tenant(h) AS tenant FROM unnest(%(hashes)s::text[]) h",
                    {"hashes": list(self._used)},
                )
            except DocflowError:
                continue  # the entries expire on their own; a request then looks its key up
            for row in rows:  # trusted from when the check started, not from when it answered
                self._cache[row["hash"]] = (row["tenant"], started + self.ttl)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None


# --- registration with quotas ------------------------------------------------------------------------------


# One statement: insert the document unless the tenant has these bytes, and only then count it. The usage row
# is locked by the upsert (ON CONFLICT DO UPDATE) until the commit, so concurrent uploads are counted exactly;
# a count over the limit becomes NULL, whose NOT NULL violation rolls the whole transaction back (nothing is
# left behind). Deciding inside Postgres keeps the lock for microseconds: no round trip to Python while held.
# The limits and the counting: docflow.store.quotas' SQL, shared with the sensor's and the CLI's.
_LIMITS = quotas.LIMITS

_REGISTER = """
{limits}, doc AS (
    INSERT INTO docflow.documents (doc_id, tenant, bucket, key, keys, sha256, size, content_type, filename,
                                   status, priority, passthrough, run_by_sensor)
    VALUES (%(doc_id)s, %(tenant)s, %(bucket)s, %(key)s, ARRAY[%(key)s], %(sha256)s, %(size)s,
            %(content_type)s, %(filename)s, 'pending', %(priority)s, %(passthrough)s, true)
    ON CONFLICT DO NOTHING
    RETURNING doc_id
), counted AS (
    SELECT 1 AS documents, %(size)s::bigint AS bytes FROM doc
), {charge}
SELECT coalesce((SELECT doc_id FROM doc), (SELECT doc_id FROM docflow.documents
                                           WHERE tenant = %(tenant)s AND sha256 = %(sha256)s)) AS doc_id,
       (SELECT count(*) FROM doc) AS inserted, (SELECT count(*) FROM charged) AS charged
""".replace("{limits}", _LIMITS).replace("{charge}", quotas.CHARGE)

# The id of bytes a concurrent registration committed after the statement's snapshot was taken.
_STORED_IDS = (
    """SELECT sha256, doc_id FROM docflow.documents WHERE tenant = %(tenant)s AND sha256 = ANY(%(shas)s)"""
)


async def register_upload(
    db: ApiDb, doc: Document, priority: int, passthrough: bool, defaults: Limits, synchronous: bool = False
) -> Registered:
    """Register a new document for the sensor to run and count it against the tenant's daily quota, in one
    transaction and one round trip. Returns the id the bytes are stored under and whether they are new (not
    when the tenant already has them, under any name); raises QuotaExceeded (nothing registered) over the
    quota.

    The commit is asynchronous unless `synchronous`: the acknowledged bytes are durable elsewhere (the bucket,
    or the spool that writes them there), and should Postgres lose the row in a crash the S3 sensor registers
    the document again from its object, under the same id."""
    params = {
        **doc.model_dump(),
        "priority": priority,
        "passthrough": passthrough,
        "day": datetime.now(UTC).date(),
        "docs_default": defaults.docs_per_day,
        "bytes_default": defaults.bytes_per_day,
    }
    try:
        [row] = await db.run(doc.tenant, _REGISTER, params, synchronous)
    except psycopg.errors.NotNullViolation as exc:
        if exc.diag.table_name != "quota_usage":
            raise
        limits = await _limits(db, doc.tenant, defaults)
        raise QuotaExceeded(quotas.message(exc.diag.column_name, limits), seconds_to_midnight()) from None
    if row["doc_id"] is None:  # registered by a concurrent upload that committed after our snapshot
        [row] = await db.run(doc.tenant, _STORED_IDS, {"tenant": doc.tenant, "shas": [doc.sha256]}, False)
    return Registered(row["doc_id"], bool(row["inserted"]))


# Many documents of one tenant at once: the same rules as _REGISTER, counted in one upsert of the usage row.
_REGISTER_MANY = """
{limits}, new AS (
    SELECT * FROM unnest(%(doc_ids)s::text[], %(keys)s::text[], %(shas)s::text[], %(sizes)s::bigint[],
                         %(types)s::text[], %(names)s::text[], %(priorities)s::integer[])
        AS u(doc_id, key, sha256, size, content_type, filename, priority)
), doc AS (
    INSERT INTO docflow.documents (doc_id, tenant, bucket, key, keys, sha256, size, content_type, filename,
                                   status, priority, passthrough, run_by_sensor)
    SELECT doc_id, %(tenant)s, %(bucket)s, key, ARRAY[key], sha256, size, content_type, filename, 'pending',
           priority, false, true
    FROM new
    ON CONFLICT DO NOTHING
    RETURNING doc_id, sha256, size
), counted AS (
    SELECT count(*) AS documents, sum(size)::bigint AS bytes FROM doc HAVING count(*) > 0
), {charge}
SELECT new.sha256, coalesce(doc.doc_id, known.doc_id) AS doc_id, doc.doc_id IS NOT NULL AS inserted,
       (SELECT count(*) FROM charged) AS charged
FROM new LEFT JOIN doc USING (sha256)
LEFT JOIN docflow.documents known ON known.tenant = %(tenant)s AND known.sha256 = new.sha256
""".replace("{limits}", _LIMITS).replace("{charge}", quotas.CHARGE)


@dataclass
class _Waiting:
    doc: Document
    priority: int
    done: asyncio.Future[Registered]


class Registrar:
    """Registers uploads like `register_upload`, but the uploads of one tenant that arrive while its previous
    registration is on its way are registered together, in one statement: a burst takes the tenant's usage
    row lock a few times instead of once per upload (on a busy machine every hand-over of that lock waits
    for a process to be scheduled). A batch that would cross the quota is registered one by one instead, so
    exactly the uploads that fit are accepted. Passthrough uploads are registered alone, synchronously."""

    def __init__(self, db: ApiDb, defaults: Limits) -> None:
        self.db = db
        self.defaults = defaults
        self._waiting: dict[str, list[_Waiting]] = {}
        self._flushing: dict[str, asyncio.Task] = {}  # tenant -> its registration task

    async def register(self, doc: Document, priority: int, passthrough: bool) -> Registered:
        if passthrough:
            return await register_upload(self.db, doc, priority, True, self.defaults, synchronous=True)
        waiting = _Waiting(doc, priority, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(doc.tenant, []).append(waiting)
        if doc.tenant not in self._flushing:
            self._flushing[doc.tenant] = asyncio.ensure_future(self._flush(doc.tenant))
        return await asyncio.shield(waiting.done)

    async def _flush(self, tenant: str) -> None:
        try:
            while batch := self._waiting.pop(tenant, []):
                await self._register(batch)
        finally:
            self._flushing.pop(tenant, None)

    async def _register(self, batch: list[_Waiting]) -> None:
        first: dict[str, _Waiting] = {}  # by content: the same bytes under two names are one document
        for w in batch:
            first.setdefault(w.doc.sha256, w)
        outcome: dict[str, Registered | BaseException] = {}
        try:
            if len(first) == 1:
                [w] = first.values()
                outcome[w.doc.sha256] = await self._one(w)
            else:
                outcome = dict(await self._many(list(first.values())))
        except QuotaExceeded:  # the batch does not fit as a whole: one by one, in arrival order
            for sha256, w in first.items():
                try:
                    outcome[sha256] = await self._one(w)
                except Exception as exc:
                    outcome[sha256] = exc
        except Exception as exc:
            outcome = dict.fromkeys(first, exc)
        for w in batch:
            result = outcome[w.doc.sha256]
            if w.done.done():
                continue
            if isinstance(result, BaseException):
                w.done.set_exception(result)
            else:  # a twin of the same bytes in the same batch is a duplicate of the first
                w.done.set_result(Registered(result.doc_id, result.new and first[w.doc.sha256] is w))

    async def _one(self, w: _Waiting) -> Registered:
        return await register_upload(self.db, w.doc, w.priority, False, self.defaults)

    async def _many(self, batch: list[_Waiting]) -> dict[str, Registered]:
        """sha256 -> the registration of each of the batch's (distinct) contents."""
        docs = [w.doc for w in batch]
        params = {
            "tenant": docs[0].tenant,
            "bucket": docs[0].bucket,
            "day": datetime.now(UTC).date(),
            "docs_default": self.defaults.docs_per_day,
            "bytes_default": self.defaults.bytes_per_day,
            "doc_ids": [d.doc_id for d in docs],
            "keys": [d.key for d in docs],
            "shas": [d.sha256 for d in docs],
            "sizes": [d.size for d in docs],
            "types": [d.content_type for d in docs],
            "names": [d.filename for d in docs],
            "priorities": [w.priority for w in batch],
        }
        try:
            rows = await self.db.run(docs[0].tenant, _REGISTER_MANY, params, synchronous=False)
        except psycopg.errors.NotNullViolation as exc:
            if exc.diag.table_name != "quota_usage":
                raise
            raise QuotaExceeded("the batch exceeds the quota", seconds_to_midnight()) from None
        missing = [r["sha256"] for r in rows if r["doc_id"] is None]  # committed after our snapshot
        if missing:
            params = {"tenant": docs[0].tenant, "shas": missing}
            rows += await self.db.run(docs[0].tenant, _STORED_IDS, params, synchronous=False)
        result = {r["sha256"]: Registered(r["doc_id"], bool(r.get("inserted"))) for r in rows if r["doc_id"]}
        for w in batch:  # the row that won was deleted meanwhile (an upload undone): register it again
            if w.doc.sha256 not in result:
                result[w.doc.sha256] = await self._one(w)
        return result


async def _limits(db: ApiDb, tenant: str, defaults: Limits) -> Limits:
    rows = await db.run(
        tenant, "SELECT docs_per_day, bytes_per_day FROM docflow.tenants WHERE tenant = %(t)s", {"t": tenant}
    )
    own = rows[0] if rows else None
    return Limits(
        (own and own["docs_per_day"]) or defaults.docs_per_day,
        (own and own["bytes_per_day"]) or defaults.bytes_per_day,
    )


async def unregister_upload(db: ApiDb, tenant: str, doc_id: str, size: int) -> None:
    """Undo `register_upload` after the bytes could not be stored (the quota is given back)."""
    await db.run(
        tenant,
        """WITH gone AS (
               DELETE FROM docflow.documents WHERE doc_id = %(doc_id)s AND status = 'pending'
               RETURNING tenant)
           UPDATE docflow.quota_usage SET documents = greatest(documents - 1, 0),
               bytes = greatest(bytes - %(size)s, 0)
           WHERE tenant = (SELECT tenant FROM gone) AND day = %(day)s""",
        {"doc_id": doc_id, "size": size, "day": datetime.now(UTC).date()},
    )


def usage(store: TenantStore, defaults: Limits) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    with store.tx() as conn:
        used = conn.execute(
            "SELECT documents, bytes FROM docflow.quota_usage WHERE tenant = %s AND day = %s",
            (store.tenant, today),
        ).fetchone()
        own = conn.execute(
            "SELECT docs_per_day, bytes_per_day FROM docflow.tenants WHERE tenant = %s", (store.tenant,)
        ).fetchone()
    return {
        "day": today.isoformat(),
        "documents": used["documents"] if used else 0,
        "bytes": used["bytes"] if used else 0,
        "docs_per_day": (own and own["docs_per_day"]) or defaults.docs_per_day,
        "bytes_per_day": (own and own["bytes_per_day"]) or defaults.bytes_per_day,
    }


def set_limits(owner: Store, tenant: str, docs_per_day: int | None, bytes_per_day: int | None) -> None:
    """An operator's per-tenant quota override (None = the default from settings)."""
    with owner.tx() as conn:
        conn.execute(
            """INSERT INTO docflow.tenants (tenant, docs_per_day, bytes_per_day) VALUES (%s, %s, %s)
               ON CONFLICT (tenant) DO UPDATE SET docs_per_day = excluded.docs_per_day,
                   bytes_per_day = excluded.bytes_per_day, updated_at = now()""",
            (tenant, docs_per_day, bytes_per_day),
        )


# --- webhooks ----------------------------------------------------------------------------------------------


def set_webhook(store: TenantStore, url: str | None) -> str | None:
    """Set (or clear) the tenant's passthrough webhook; returns the signing secret (new for a new URL)."""
    secret = secrets.token_urlsafe(32) if url else None
    with store.tx() as conn:
        conn.execute(
            """INSERT INTO docflow.tenants (tenant, webhook_url, webhook_secret) VALUES (%s, %s, %s)
               ON CONFLICT (tenant) DO UPDATE SET webhook_url = excluded.webhook_url,
                   webhook_secret = excluded.webhook_secret, updated_at = now()""",
            (store.tenant, url, secret),
        )
    return secret


def get_webhook(store: Store, tenant: str) -> tuple[str, str] | None:
    with store.tx() as conn:
        row = conn.execute(
            "SELECT webhook_url, webhook_secret FROM docflow.tenants WHERE tenant = %s", (tenant,)
        ).fetchone()
    return (row["webhook_url"], row["webhook_secret"]) if row and row["webhook_url"] else None


# --- idempotency keys --------------------------------------------------------------------------------------

IDEMPOTENCY_WAIT_S = 60.0  # how long a request waits for the first one with its key to finish
IDEMPOTENCY_STALE_S = 600.0  # a 'running' key this old belongs to a request that died: take it over


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict[str, Any]


async def idempotency_begin(db: ApiDb, tenant: str, key: str, endpoint: str) -> Replay | None:
    """None: this request owns the key and must call `idempotency_finish`. A Replay: the stored response of
    the first request with this key (waited for while it runs)."""
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
    delay = 0.02
    while True:
        rows = await db.run(
            tenant,
            """WITH mine AS (
                       INSERT INTO docflow.idempotency (tenant, key, endpoint) VALUES (%(t)s, %(k)s, %(e)s)
                       ON CONFLICT DO NOTHING RETURNING key)
                   SELECT EXISTS (SELECT FROM mine) AS mine, endpoint, state, status_code, response,
                          extract(epoch FROM now() - created_at) AS age
                   FROM (SELECT 1) one LEFT JOIN docflow.idempotency ON tenant = %(t)s AND key = %(k)s""",
            {"t": tenant, "k": key, "e": endpoint},
        )
        row = rows[0]
        if row["mine"]:
            return None
        if row["state"] == "running" and row["age"] > IDEMPOTENCY_STALE_S:
            taken = await db.run(
                tenant,
                """UPDATE docflow.idempotency SET created_at = now()
                   WHERE tenant = %(t)s AND key = %(k)s AND state = 'running'
                     AND created_at < now() - %(stale)s
                   RETURNING key""",
                {"t": tenant, "k": key, "stale": timedelta(seconds=IDEMPOTENCY_STALE_S)},
            )
            if taken:
                return None  # taken over from a request that died
            continue
        if row["state"] is None:
            continue  # the first request gave the key up (it failed) between our two looks: retry
        if row["endpoint"] != endpoint:
            raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for {row['endpoint']}")
        if row["state"] == "done":
            return Replay(row["status_code"], row["response"])
        if time.monotonic() > deadline:
            raise IdempotencyConflict(f"a request with Idempotency-Key {key!r} is still in progress")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def idempotency_finish(
    db: ApiDb, tenant: str, key: str, status_code: int, body: dict[str, Any]
) -> None:
    await db.run(
        tenant,
        """UPDATE docflow.idempotency SET state = 'done', status_code = %(status)s, response = %(body)s
           WHERE tenant = %(t)s AND key = %(k)s""",
        {"status": status_code, "body": Jsonb(body), "t": tenant, "k": key},
    )


async def idempotency_abandon(db: ApiDb, tenant: str, key: str) -> None:
    """The request failed on the server's side: free the key so that a retry runs again."""
    await db.run(
        tenant,
        "DELETE FROM docflow.idempotency WHERE tenant = %(t)s AND key = %(k)s",
        {"t": tenant, "k": key},
    )


# --- progress -----------------------------------------------------------------------------------------------


async def document_signatures(
    db: ApiDb, tenant: str, doc_ids: list[str]
) -> dict[str, tuple[str, str | None, Any]]:
    """doc_id -> (status, stage, updated_at) of the tenant's documents among `doc_ids` (a deleted one is
    missing): what progress streams check every second, together, before they read anything more."""
    rows = await db.run(
        tenant,
        "SELECT doc_id, status, stage, updated_at FROM docflow.documents WHERE doc_id = ANY(%(doc_ids)s)",
        {"doc_ids": doc_ids},
    )
    return {r["doc_id"]: (r["status"], r["stage"], r["updated_at"]) for r in rows}


# --- passthrough (zero retention) --------------------------------------------------------------------------


def chunk_rows(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """The document's chunks as the passthrough webhook sends them, each with its vector (`embedding`, a list
    of floats: the receiver keeps the only copy) and the model that made it."""
    with store.tx() as conn:
        return conn.execute(
            """SELECT chunk_index, text, heading_path, page_start, page_end, n_tokens,
                      embedding::real[] AS embedding, embedding_model
               FROM docflow.chunks WHERE doc_id = %s ORDER BY chunk_index""",
            (doc_id,),
        ).fetchall()


def passthrough_ids(store: Store, doc_ids: list[str]) -> set[str]:
    """Those of `doc_ids` that are passthrough documents: their content must not reach Dagster's records."""
    with store.tx() as conn:
        rows = conn.execute(
            "SELECT doc_id FROM docflow.documents WHERE passthrough AND doc_id = ANY(%s)", (doc_ids,)
        ).fetchall()
    return {r["doc_id"] for r in rows}


def forget_idempotency(store: Store, doc_id: str) -> None:
    """Drop the stored answers of the uploads that made the document (they name its file)."""
    with store.tx() as conn:
        conn.execute("DELETE FROM docflow.idempotency WHERE response->>'doc_id' = %s", (doc_id,))


def object_keys(store: Store, doc_id: str) -> list[str]:
    """Every object key the document has been seen under."""
    with store.tx() as conn:
        row = conn.execute("SELECT keys FROM docflow.documents WHERE doc_id = %s", (doc_id,)).fetchone()
    return list(row["keys"]) if row else []


def finished_passthrough(store: Store, limit: int = 50) -> list[tuple[str, str, float]]:
    """(doc_id, tenant, seconds since it finished) of passthrough documents that are done or failed."""
    with store.tx() as conn:
        rows = conn.execute(
            """SELECT doc_id, tenant, extract(epoch FROM now() - updated_at) AS age FROM docflow.documents
               WHERE passthrough AND status IN ('done', 'failed') ORDER BY updated_at LIMIT %s""",
            (limit,),
        ).fetchall()
    return [(r["doc_id"], r["tenant"], float(r["age"])) for r in rows]
