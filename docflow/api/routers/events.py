"""A document's progress as Server-Sent Events."""

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from docflow.api import events
from docflow.api.errors import READ_ERRORS
from docflow.api.state import Authenticated

SSE_HEARTBEAT_S = 15.0

router = APIRouter(tags=["documents"])


@router.get(
    "/v1/documents/{doc_id}/events",
    responses={
        **READ_ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "uploaded, classified, parsed, "
            "extracted, embedded, done (or error with a message); `id` is the event's position.",
        },
    },
)
async def document_events(
    doc_id: str,
    who: Authenticated,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events, one per stage, from the Dagster event log; resume with `Last-Event-ID`."""
    await run_in_threadpool(who.store.get_document, doc_id)
    start = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else 0
    tracker = events.Tracker(who.store, who.state.instance, doc_id)

    watch = who.state.rows

    def signature(first: bool) -> Awaitable[tuple | None]:
        return (watch.now if first else watch.next)(who.tenant, doc_id)

    return StreamingResponse(
        stream(tracker, start, signature),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def stream(
    tracker: events.Tracker, start: int, signature: Callable[[bool], Awaitable[tuple | None]]
) -> AsyncIterator[str]:
    """The tracker's events as SSE. Each second the row's status, stage and time (one query for all open
    streams: `events.RowWatch`) say whether anything can have changed; the tracker (the document, the event
    log) is read at the start, when the row changed, while a change of a document being processed settles
    (its events are written just after the row), and at the end. An idle or pending stream costs its share
    of that query, not a worker thread and the event log."""
    yield "retry: 2000\n\n"
    sent, beat = start, time.monotonic()
    polled: object = ()  # the row's signature when the tracker was last read
    changed_at = 0.0
    first = True
    while True:
        current = await signature(first)  # after the first, waits for the watch's next tick
        first = False
        now = time.monotonic()
        if current != polled:
            changed_at = now
        finished = current is None or current[0] in ("done", "failed")
        settling = current is not None and current[0] != "pending" and now - changed_at <= events.SETTLE_S + 2
        if current != polled or finished or settling:
            polled = current
            found, final = await run_in_threadpool(tracker.poll)
            for position, event in enumerate(found, 1):
                if position > sent:
                    data = json.dumps(event.data, default=str)
                    yield f"id: {position}\nevent: {event.stage}\ndata: {data}\n\n"
                    sent, beat = position, time.monotonic()
            if final:
                return
        if time.monotonic() - beat > SSE_HEARTBEAT_S:
            yield ": keep-alive\n\n"
            beat = time.monotonic()
