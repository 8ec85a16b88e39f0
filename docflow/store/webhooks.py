"""Completion webhooks' SQL: tenants' endpoints and the outbox of deliveries (migration 0010_webhooks.sql).

Deliveries are written by a trigger on docflow.documents, in the transaction that marks a document done or
failed; `claim_due` hands the due ones to one sender at a time (FOR UPDATE SKIP LOCKED) and leases them, so
a sender that dies mid-post leaves them to be claimed again once the lease is over. The functions take a
`Store` (the owner: CLI, sensor) or a `TenantStore` (the API: row-level security adds the tenant filter).
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from docflow.errors import DocflowError
from docflow.store.db import Store


@dataclass(frozen=True)
class Endpoint:
    id: str
    tenant: str
    url: str
    created_at: datetime
    disabled: bool
    secret: str | None = None  # only when just created


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    event: str
    doc_id: str
    tenant: str
    payload: dict[str, Any]
    attempts: int  # including this one
    endpoint_id: str
    url: str
    secret: str


class TooManyEndpoints(DocflowError):
    """The tenant has as many endpoints as it may have."""


def create_endpoint(store: Store, tenant: str, url: str, max_endpoints: int = 20) -> Endpoint:
    """A new endpoint with a new random signing secret (returned here only). Each endpoint multiplies every
    document's deliveries, so a tenant has at most `max_endpoints`."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    with store.tx() as conn:
        row = conn.execute(
            """INSERT INTO docflow.webhook_endpoints (tenant, url, secret)
               SELECT %(tenant)s, %(url)s, %(secret)s
               WHERE (SELECT count(*) FROM docflow.webhook_endpoints WHERE tenant = %(tenant)s) < %(max)s
               RETURNING id, tenant, url, created_at, disabled, secret""",
            {"tenant": tenant, "url": url, "secret": secret, "max": max_endpoints},
        ).fetchone()
    if row is None:
        raise TooManyEndpoints(f"a tenant has at most {max_endpoints} webhook endpoints")
    return _endpoint(row)


def delete_endpoint(store: Store, endpoint_id: str, tenant: str | None) -> bool:
    """Remove an endpoint (of `tenant`, or of any tenant) with its deliveries; False if there is none."""
    try:
        uuid.UUID(endpoint_id)
    except ValueError:
        return False
    with store.tx() as conn:
        cur = conn.execute(
            """DELETE FROM docflow.webhook_endpoints
               WHERE id = %(id)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s)""",
            {"id": endpoint_id, "tenant": tenant},
        )
        return cur.rowcount > 0


def list_endpoints(store: Store, tenant: str | None = None) -> list[dict[str, Any]]:
    """Endpoints (all tenants' unless `tenant`) with their deliveries' counts and last failure; no secrets."""
    with store.tx() as conn:
        return conn.execute(
            """SELECT e.id::text AS id, e.tenant, e.url, e.created_at, e.disabled,
                      count(*) FILTER (WHERE d.state = 'delivered') AS delivered,
                      count(*) FILTER (WHERE d.state = 'pending') AS pending,
                      count(*) FILTER (WHERE d.state = 'dead') AS dead,
                      max(d.delivered_at) AS last_delivered_at,
                      (SELECT f.last_error FROM docflow.webhook_deliveries f
                       WHERE f.endpoint_id = e.id AND f.last_error IS NOT NULL
                       ORDER BY f.next_attempt_at DESC, f.id DESC LIMIT 1) AS last_error
               FROM docflow.webhook_endpoints e
               LEFT JOIN docflow.webhook_deliveries d ON d.endpoint_id = e.id
               WHERE %(tenant)s::text IS NULL OR e.tenant = %(tenant)s
               GROUP BY e.id ORDER BY e.tenant, e.created_at, e.id""",
            {"tenant": tenant},
        ).fetchall()


def delivery_counts(store: Store, tenant: str | None = None) -> list[dict[str, Any]]:
    """Per tenant: deliveries delivered, pending and dead (for `docflow status`)."""
    with store.tx() as conn:
        return conn.execute(
            """SELECT tenant, count(*) FILTER (WHERE state = 'delivered') AS delivered,
                      count(*) FILTER (WHERE state = 'pending') AS pending,
                      count(*) FILTER (WHERE state = 'dead') AS dead
               FROM docflow.webhook_deliveries
               WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s
               GROUP BY tenant ORDER BY tenant""",
            {"tenant": tenant},
        ).fetchall()


def deliveries(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """Every delivery of one document's events, oldest first."""
    with store.tx() as conn:
        return conn.execute(
            """SELECT id, event_id::text AS event_id, endpoint_id::text AS endpoint_id, tenant, doc_id,
                      event, payload, state, attempts, next_attempt_at, last_error, last_status,
                      created_at, delivered_at
               FROM docflow.webhook_deliveries WHERE doc_id = %s ORDER BY id""",
            (doc_id,),
        ).fetchall()


# Due deliveries, at most `per_endpoint` of each endpoint (one slow receiver's backlog never fills a whole
# claim), oldest first. The ranking reads without locks; the outer query locks, skipping rows another sender
# holds, and re-checks that each row is still pending and due (it may have been sent meanwhile). Claiming
# counts the attempt and moves next_attempt_at to the end of the lease.
_CLAIM = """
WITH ranked AS (
    SELECT d.id, row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS n
    FROM docflow.webhook_deliveries d
    JOIN docflow.webhook_endpoints e ON e.id = d.endpoint_id AND NOT e.disabled
    WHERE d.state = 'pending' AND d.next_attempt_at <= %(now)s
), due AS (
    SELECT d.id FROM docflow.webhook_deliveries d
    WHERE d.id IN (SELECT id FROM ranked WHERE n <= %(per_endpoint)s)
      AND d.state = 'pending' AND d.next_attempt_at <= %(now)s
    ORDER BY d.next_attempt_at, d.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE docflow.webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = %(now)s + %(lease)s
FROM due, docflow.webhook_endpoints e
WHERE d.id = due.id AND e.id = d.endpoint_id
RETURNING d.id, d.event_id::text AS event_id, d.event, d.doc_id, d.tenant, d.payload, d.attempts,
          e.id::text AS endpoint_id, e.url, e.secret
"""


def claim_due(store: Store, now: datetime, limit: int, per_endpoint: int, lease: timedelta) -> list[Claimed]:
    with store.tx() as conn:
        rows = conn.execute(
            _CLAIM, {"now": now, "limit": limit, "per_endpoint": per_endpoint, "lease": lease}
        ).fetchall()
    return sorted((Claimed(**r) for r in rows), key=lambda c: c.id)


def mark_delivered(store: Store, delivery_id: int, status: int, at: datetime) -> None:
    with store.tx() as conn:
        conn.execute(
            """UPDATE docflow.webhook_deliveries SET state = 'delivered', delivered_at = %s, last_status = %s
               WHERE id = %s AND state = 'pending'""",
            (at, status, delivery_id),
        )


def mark_failed(
    store: Store, delivery_id: int, status: int | None, error: str, next_attempt_at: datetime | None
) -> None:
    """A failed attempt: retried at `next_attempt_at`, or dead-lettered when that is None."""
    with store.tx() as conn:
        conn.execute(
            """UPDATE docflow.webhook_deliveries
               SET state = CASE WHEN %(next)s::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
                   next_attempt_at = coalesce(%(next)s, next_attempt_at),
                   last_status = %(status)s, last_error = %(error)s
               WHERE id = %(id)s AND state = 'pending'""",
            {"next": next_attempt_at, "status": status, "error": error[:1000], "id": delivery_id},
        )


def release(store: Store, delivery_ids: list[int], next_attempt_at: datetime) -> None:
    """Give claimed deliveries back unsent (the tick's time ran out, or their endpoint just failed): the
    claim's attempt is not counted."""
    if not delivery_ids:
        return
    with store.tx() as conn:
        conn.execute(
            """UPDATE docflow.webhook_deliveries
               SET attempts = greatest(attempts - 1, 0), next_attempt_at = %s
               WHERE id = ANY(%s) AND state = 'pending'""",
            (next_attempt_at, delivery_ids),
        )


def redeliver_dead(store: Store, tenant: str | None = None, endpoint_id: str | None = None) -> int:
    """Dead deliveries (of a tenant, an endpoint, or all) back to pending with a fresh count of attempts,
    due now: after the receiver is fixed. Returns how many."""
    with store.tx() as conn:
        cur = conn.execute(
            """UPDATE docflow.webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now()
               WHERE state = 'dead' AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
                 AND (%(endpoint)s::uuid IS NULL OR endpoint_id = %(endpoint)s::uuid)""",
            {"tenant": tenant, "endpoint": endpoint_id},
        )
        return cur.rowcount


def prune(store: Store, before: datetime, limit: int = 1000) -> int:
    """Delete up to `limit` delivered or dead deliveries created before `before`; returns how many."""
    with store.tx() as conn:
        cur = conn.execute(
            """DELETE FROM docflow.webhook_deliveries WHERE id IN (
                   SELECT id FROM docflow.webhook_deliveries
                   WHERE state <> 'pending' AND created_at < %s ORDER BY created_at LIMIT %s)""",
            (before, limit),
        )
        return cur.rowcount


def _endpoint(row: dict[str, Any]) -> Endpoint:
    return Endpoint(
        id=str(row["id"]),
        tenant=row["tenant"],
        url=row["url"],
        created_at=row["created_at"],
        disabled=row["disabled"],
        secret=row.get("secret"),
    )
