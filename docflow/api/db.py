"""The API's Postgres access: a tenant-bound store (row-level security), API keys, quotas, idempotency keys.

The API connects as the role `docflow_api` (created by migration 0003), to which the row-level security
policies apply; every transaction of a `TenantStore` first sets `docflow.tenant`, so any query a handler runs,
filtered by tenant or not, sees only that tenant's rows. Keys are created with the owner's store.
"""

import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from docflow.errors import DocflowError
from docflow.models import Document
from docflow.settings import Settings
from docflow.store import Store

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


class KeyCache:
    """key hash -> tenant, looked up through the SECURITY DEFINER function, remembered for `ttl` seconds."""

    def __init__(self, url: str, ttl: float = 10.0) -> None:
        self.store = Store(url)
        self.ttl = ttl
        self._cache: dict[str, tuple[str | None, float]] = {}

    def tenant(self, key: str) -> str | None:
        digest = hash_key(key)
        hit = self._cache.get(digest)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        with self.store.tx() as conn:
            row = conn.execute("SELECT docflow.api_key_tenant(%s) AS tenant", (digest,)).fetchone()
        tenant = row["tenant"] if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (tenant, time.monotonic() + self.ttl)
        return tenant


# --- registration with quotas ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    docs_per_day: int
    bytes_per_day: int


def seconds_to_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()) + 1)


def register_upload(
    store: TenantStore, doc: Document, priority: int, passthrough: bool, defaults: Limits
) -> bool:
    """Register a new document for the sensor to run and count it against the tenant's daily quota, in one
    transaction: the usage row is locked (FOR UPDATE), so concurrent uploads are counted exactly, and an
    upload over quota leaves nothing behind. Returns False when the tenant already has these bytes."""
    today = datetime.now(UTC).date()
    with store.tx() as conn:
        row = conn.execute(
            """INSERT INTO docflow.documents (doc_id, tenant, bucket, key, keys, sha256, size, content_type,
                   filename, status, priority, passthrough, run_by_sensor)
               VALUES (%(doc_id)s, %(tenant)s, %(bucket)s, %(key)s, ARRAY[%(key)s], %(sha256)s, %(size)s,
                   %(content_type)s, %(filename)s, 'pending', %(priority)s, %(passthrough)s, true)
               ON CONFLICT (doc_id) DO NOTHING RETURNING doc_id""",
            {**doc.model_dump(), "priority": priority, "passthrough": passthrough},
        ).fetchone()
        if row is None:
            return False
        _charge(conn, doc.tenant, today, doc.size, defaults)
    return True


def _charge(conn: psycopg.Connection, tenant: str, day: date, size: int, defaults: Limits) -> None:
    conn.execute(
        "INSERT INTO docflow.quota_usage (tenant, day) VALUES (%s, %s) ON CONFLICT DO NOTHING", (tenant, day)
    )
    usage = conn.execute(
        "SELECT documents, bytes FROM docflow.quota_usage WHERE tenant = %s AND day = %s FOR UPDATE",
        (tenant, day),
    ).fetchone()
    own = conn.execute(
        "SELECT docs_per_day, bytes_per_day FROM docflow.tenants WHERE tenant = %s", (tenant,)
    ).fetchone()
    docs_limit = (own and own["docs_per_day"]) or defaults.docs_per_day
    bytes_limit = (own and own["bytes_per_day"]) or defaults.bytes_per_day
    if usage["documents"] + 1 > docs_limit:
        raise QuotaExceeded(f"quota exceeded: {docs_limit} new documents per day", seconds_to_midnight())
    if usage["bytes"] + size > bytes_limit:
        raise QuotaExceeded(f"quota exceeded: {bytes_limit} bytes per day", seconds_to_midnight())
    conn.execute(
        """UPDATE docflow.quota_usage SET documents = documents + 1, bytes = bytes + %s
           WHERE tenant = %s AND day = %s""",
        (size, tenant, day),
    )


def unregister_upload(store: TenantStore, doc_id: str, size: int) -> None:
    """Undo `register_upload` after the object could not be written (the quota is given back)."""
    with store.tx() as conn:
        deleted = conn.execute(
            "DELETE FROM docflow.documents WHERE doc_id = %s AND status = 'pending' RETURNING tenant",
            (doc_id,),
        ).fetchone()
        if deleted:
            conn.execute(
                """UPDATE docflow.quota_usage SET documents = greatest(documents - 1, 0),
                       bytes = greatest(bytes - %s, 0) WHERE tenant = %s AND day = %s""",
                (size, deleted["tenant"], datetime.now(UTC).date()),
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


def idempotency_begin(store: TenantStore, key: str, endpoint: str) -> Replay | None:
    """None: this request owns the key and must call `idempotency_finish`. A Replay: the stored response of
    the first request with this key (waited for while it runs)."""
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
    delay = 0.02
    while True:
        with store.tx() as conn:
            mine = conn.execute(
                """INSERT INTO docflow.idempotency (tenant, key, endpoint) VALUES (%s, %s, %s)
                   ON CONFLICT DO NOTHING RETURNING key""",
                (store.tenant, key, endpoint),
            ).fetchone()
            if mine:
                return None
            row = conn.execute(
                """SELECT endpoint, state, status_code, response,
                          extract(epoch FROM now() - created_at) AS age
                   FROM docflow.idempotency WHERE tenant = %s AND key = %s""",
                (store.tenant, key),
            ).fetchone()
            if row and row["state"] == "running" and row["age"] > IDEMPOTENCY_STALE_S:
                conn.execute(
                    "UPDATE docflow.idempotency SET created_at = now() WHERE tenant = %s AND key = %s",
                    (store.tenant, key),
                )
                return None
        if row is None:
            continue  # the first request gave the key up (it failed) between our two statements: retry
        if row["endpoint"] != endpoint:
            raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for {row['endpoint']}")
        if row["state"] == "done":
            return Replay(row["status_code"], row["response"])
        if time.monotonic() > deadline:
            raise IdempotencyConflict(f"a request with Idempotency-Key {key!r} is still in progress")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def idempotency_finish(store: TenantStore, key: str, status_code: int, body: dict[str, Any]) -> None:
    with store.tx() as conn:
        conn.execute(
            """UPDATE docflow.idempotency SET state = 'done', status_code = %s, response = %s
               WHERE tenant = %s AND key = %s""",
            (status_code, Jsonb(body), store.tenant, key),
        )


def idempotency_abandon(store: TenantStore, key: str) -> None:
    """The request failed on the server's side: free the key so that a retry runs again."""
    with store.tx() as conn:
        conn.execute("DELETE FROM docflow.idempotency WHERE tenant = %s AND key = %s", (store.tenant, key))
