"""Completion webhooks: every document's `document.done` / `document.failed`, POSTed to each endpoint its
tenant registered (API `POST /v1/webhooks`, CLI `docflow webhooks add`).

The events are written to an outbox (docflow.webhook_deliveries) by a Postgres trigger, in the transaction
that marks the document done or failed; `deliver_due`, called by `webhook_sensor` every few seconds, posts
the due ones. So delivery depends on no process staying up: a delivery claimed by a sender that dies is
claimed again when its lease ends. Delivery is at least once; receivers dedupe on `X-Docflow-Event-Id`.

Each POST carries `X-Docflow-Event`, `X-Docflow-Event-Id` and `X-Docflow-Signature: t=<unix time>,v1=<hex
HMAC-SHA256(secret, "<t>.<body>")>` (the passthrough webhook's scheme; receivers reject |now - t| > 300 s).
A non-2xx answer, a timeout or a refused connection is retried with exponential backoff and jitter; after
`webhook_max_attempts` the delivery is dead (shown by `docflow status` and `docflow webhooks list`; sent
again by `docflow webhooks retry --dead`). Finished deliveries are deleted after `webhook_keep_days`.
No Dagster here.
"""

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from docflow.errors import DocflowError
from docflow.netguard import Network, parse_networks, post_json, resolve
from docflow.passthrough import sign, verify
from docflow.settings import Settings
from docflow.store import webhooks as outbox
from docflow.store.db import Store

__all__ = ["Report", "backoff", "check_url", "deliver_due", "sign", "verify"]

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

CLAIM_LIMIT = 50  # deliveries claimed at once
PER_ENDPOINT = 10  # of which at most this many for one endpoint
SENDERS = 4  # endpoints posted to at the same time


class BadWebhookUrl(DocflowError):
    """Not an http(s) URL with a host."""


def check_url(url: str, allow: list[Network]) -> None:
    """Refuse what could never be delivered: another scheme, no host, or an address inside the network
    (BlockedAddress, unless `DOCFLOW_API_FETCH_ALLOW_NETWORKS` allows it). Checked again at each POST."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadWebhookUrl(f"not a URL: {url!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadWebhookUrl("a webhook must be an http(s) URL with a host")
    resolve(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80), allow)


def backoff(attempts: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base * 2^(attempts-1), capped, with the
    upper half jittered so that deliveries that failed together do not all come back together."""
    delay = min(max_s, base_s * 2 ** max(0, attempts - 1))
    return delay / 2 + delay / 2 * rand()


@dataclass
class Report:
    delivered: list[str] = field(default_factory=list)  # event ids
    retrying: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    released: int = 0  # claimed but left for later (time budget, or their endpoint just failed)
    pruned: int = 0  # finished deliveries older than webhook_keep_days, deleted

    def __str__(self) -> str:
        return (
            f"{len(self.delivered)} delivered, {len(self.retrying)} to retry, {len(self.dead)} dead, "
            f"{self.released} left for later"
        )


def deliver_due(
    store: Store,
    settings: Settings,
    clock: Clock = lambda: datetime.now(UTC),
    budget_s: float | None = None,
) -> Report:
    """Post the deliveries due by `clock()`, for at most `budget_s` (default `webhook_tick_budget_s`).

    Endpoints are served in parallel, each one's deliveries in order; after an endpoint fails, its other
    deliveries of this call are given back unsent (they wait for the failed one's retry) so that a receiver
    that is down or slow costs one timeout per call, not one per delivery."""
    budget = settings.webhook_tick_budget_s if budget_s is None else budget_s
    deadline = time.monotonic() + budget
    allow = parse_networks(settings.api_fetch_allow_networks)
    report = Report()
    # the lease outlasts this call: a claimed delivery is sent by this call or given back before then
    lease = timedelta(seconds=budget + settings.webhook_timeout_s + 60)
    while time.monotonic() < deadline:
        claimed = outbox.claim_due(store, clock(), CLAIM_LIMIT, PER_ENDPOINT, lease)
        if not claimed:
            break
        by_endpoint: dict[str, list[outbox.Claimed]] = defaultdict(list)
        for c in claimed:
            by_endpoint[c.endpoint_id].append(c)
        with ThreadPoolExecutor(min(SENDERS, len(by_endpoint))) as pool:
            for part in pool.map(
                lambda group: _send_all(store, settings, allow, clock, deadline, group),
                by_endpoint.values(),
            ):
                report.delivered += part.delivered
                report.retrying += part.retrying
                report.dead += part.dead
                report.released += part.released
        if len(claimed) < CLAIM_LIMIT or report.released:
            break  # nothing more is due, or the rest waits for a failed endpoint or the next call
    report.pruned = outbox.prune(store, clock() - timedelta(days=settings.webhook_keep_days))
    return report


def _send_all(
    store: Store,
    settings: Settings,
    allow: list[Network],
    clock: Clock,
    deadline: float,
    group: list[outbox.Claimed],
) -> Report:
    """One endpoint's claimed deliveries, in order."""
    report = Report()
    for i, c in enumerate(group):
        left = deadline - time.monotonic()
        if left <= 0:
            outbox.release(store, [x.id for x in group[i:]], clock())
            report.released += len(group) - i
            break
        status, error = _post(c, allow, min(settings.webhook_timeout_s, max(1.0, left)))
        if error is None:
            outbox.mark_delivered(store, c.id, status or 200, clock())
            report.delivered.append(c.event_id)
            continue
        log.warning("webhook %s for %s (attempt %s): %s", c.url, c.event_id, c.attempts, error)
        if c.attempts >= settings.webhook_max_attempts:
            outbox.mark_failed(store, c.id, status, error, None)
            report.dead.append(c.event_id)
        else:
            wait = backoff(c.attempts, settings.webhook_backoff_s, settings.webhook_max_backoff_s)
            retry_at = clock() + timedelta(seconds=wait)
            outbox.mark_failed(store, c.id, status, error, retry_at)
            report.retrying.append(c.event_id)
            rest = group[i + 1 :]
            outbox.release(store, [x.id for x in rest], retry_at)
            report.released += len(rest)
            break
    return report


def _post(c: outbox.Claimed, allow: list[Network], timeout: float) -> tuple[int | None, str | None]:
    """(HTTP status, error or None once delivered)."""
    body = json.dumps(c.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "User-Agent": "docflow-webhooks",
        "X-Docflow-Event": c.event,
        "X-Docflow-Event-Id": c.event_id,
        "X-Docflow-Delivery-Attempt": str(c.attempts),
        "X-Docflow-Signature": sign(c.secret, body),
    }
    try:
        response = post_json(c.url, body, headers, allow, timeout)
    except DocflowError as exc:  # blocked address, DNS failure
        return None, str(exc)
    except (httpx.HTTPError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"
