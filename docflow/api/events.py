"""A document's progress as a list of stage events, read from the Dagster event log and the document row.

`uploaded` (the document is registered and its bytes stored durably), then one event per asset materialization
of the document's partition in the order Dagster recorded them (`classified`, `parsed`, `extracted`,
`embedded`; `raw_file` is the pipeline's confirmation of `uploaded` and not repeated), then `done` — or
`error` with the message the pipeline stored. The list only ever grows at its end (materializations are
ordered by their storage id), so an event's id is its position: a client resuming with `Last-Event-ID: n`
gets the events after the n-th.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from docflow.errors import NotFound
from docflow.models import Document
from docflow.store import Store, tenants

if TYPE_CHECKING:
    from dagster import DagsterInstance

STAGES = {
    "classification": "classified",
    "parsed_markdown": "parsed",
    "extracted_fields": "extracted",
    "embeddings": "embedded",
}
POLL_S = 1.0  # how often a progress stream checks its document's row
SETTLE_S = 15.0  # after the row changes, keep reading the event log this long (it is written just after)


@dataclass(frozen=True)
class StageEvent:
    stage: str  # uploaded, classified, parsed, extracted, embedded, done, error
    data: dict[str, Any]


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


def materializations(instance: "DagsterInstance", doc_id: str, since: float) -> list[tuple[int, str, float]]:
    """(storage id, stage, timestamp): the first materialization of each asset for the partition."""
    import dagster as dg

    found: list[tuple[int, str, float]] = []
    for asset, stage in STAGES.items():
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(asset), asset_partitions=[doc_id], after_timestamp=since
            ),
            limit=1,
            ascending=True,
        )
        found += [(r.storage_id, stage, r.timestamp) for r in result.records]
    return sorted(found)


@dataclass
class Tracker:
    """Follows one document; `poll()` returns every event so far and whether the story is finished.
    The event log is only read when the row changed recently, so idle streams cost one row read per poll."""

    store: Store
    instance: Callable[[], "DagsterInstance"]  # created on first use: pending documents need no event log
    doc_id: str
    _signature: tuple | None = None
    _changed_at: float = 0.0
    _stages: list[tuple[int, str, float]] = field(default_factory=list)

    def poll(self) -> tuple[list[StageEvent], bool]:
        try:
            doc = self.store.get_document(self.doc_id)
        except NotFound:
            return [StageEvent("error", {"doc_id": self.doc_id, "message": "the document was deleted"})], True
        signature = (doc.status, doc.stage, doc.updated_at)
        now = time.monotonic()
        if signature != self._signature:
            self._signature, self._changed_at = signature, now
        if now - self._changed_at <= SETTLE_S and doc.status != "pending":
            since = (_ts(doc.created_at) or 0.0) - 1.0
            self._stages = materializations(self.instance(), self.doc_id, since)
        return build(doc, self._stages, settled=now - self._changed_at > SETTLE_S)


def build(
    doc: Document, stages: list[tuple[int, str, float]], settled: bool
) -> tuple[list[StageEvent], bool]:
    base = {"doc_id": doc.doc_id}
    events = [
        StageEvent(
            "uploaded",
            {**base, "filename": doc.filename, "size": doc.size, "at": _ts(doc.created_at)},
        )
    ]
    events += [StageEvent(stage, {**base, "at": at}) for _, stage, at in stages]
    seen = {s for _, s, _ in stages}
    if doc.status == "failed":
        message = doc.error or "processing failed"
        events.append(StageEvent("error", {**base, "stage": doc.stage, "message": message}))
        return events, True
    if doc.status == "done" and ("embedded" in seen or settled):
        events.append(StageEvent("done", {**base, "doc_type": doc.doc_type, "at": _ts(doc.updated_at)}))
        return events, True
    return events, False


class RowWatch:
    """The rows' signatures (status, stage, updated_at) that progress streams check once a tick: every
    stream waiting for the next tick is answered by one query per tenant, so many open streams cost a query
    a tick, not one each. `now()` answers at once (a stream's first check)."""

    def __init__(self, db: tenants.ApiDb, every: float = POLL_S) -> None:
        self.db = db
        self.every = every
        self._waiting: dict[str, dict[str, list[asyncio.Future]]] = {}  # tenant -> doc_id -> streams
        self._ticker: asyncio.Task | None = None

    async def now(self, tenant: str, doc_id: str) -> tuple | None:
        return (await tenants.document_signatures(self.db, tenant, [doc_id])).get(doc_id)

    async def next(self, tenant: str, doc_id: str) -> tuple | None:
        """The row's signature at the next tick (None once the document is gone)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant, {}).setdefault(doc_id, []).append(waiter)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick())
        return await waiter

    async def _tick(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.every)
            waiting, self._waiting = self._waiting, {}
            for tenant, docs in waiting.items():
                try:
                    found = await tenants.document_signatures(self.db, tenant, list(docs))
                except Exception as exc:
                    for waiter in (w for ws in docs.values() for w in ws if not w.done()):
                        waiter.set_exception(exc)
                    continue
                for doc_id, waiters in docs.items():
                    for waiter in waiters:
                        if not waiter.done():  # a stream whose client left is cancelled
                            waiter.set_result(found.get(doc_id))

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
