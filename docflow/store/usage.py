"""The usage table (migration 0011): the steps' metered lines, added per tenant, day, step, backend and model,
and the per-day figures `docflow usage`, `GET /v1/usage` and the `usage_daily` asset report."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from docflow.metering import COUNTS
from docflow.store.db import Store

# One statement per step: the document's tenant is looked up in it, every line of the step is added to its
# row of the day. Lines come sorted, so two steps adding to the same rows lock them in the same order.
_RECORD = """
INSERT INTO docflow.usage AS u (tenant, day, step, backend, model, documents, pages, bytes, ocr_pages,
    remote_calls, input_tokens, output_tokens, pages_billed, credits, cost_usd)
SELECT d.tenant, %(day)s, %(step)s, l.backend, l.model, l.documents, l.pages, l.bytes, l.ocr_pages,
    l.remote_calls, l.input_tokens, l.output_tokens, l.pages_billed, l.credits, l.cost_usd
FROM docflow.documents d
CROSS JOIN jsonb_to_recordset(%(lines)s) AS l(backend text, model text, documents integer, pages integer,
    bytes bigint, ocr_pages integer, remote_calls integer, input_tokens bigint, output_tokens bigint,
    pages_billed integer, credits numeric, cost_usd numeric)
WHERE d.doc_id = %(doc_id)s
ON CONFLICT (tenant, day, step, backend, model) DO UPDATE SET
    documents = u.documents + excluded.documents, pages = u.pages + excluded.pages,
    bytes = u.bytes + excluded.bytes, ocr_pages = u.ocr_pages + excluded.ocr_pages,
    remote_calls = u.remote_calls + excluded.remote_calls,
    input_tokens = u.input_tokens + excluded.input_tokens,
    output_tokens = u.output_tokens + excluded.output_tokens,
    pages_billed = u.pages_billed + excluded.pages_billed, credits = u.credits + excluded.credits,
    cost_usd = u.cost_usd + excluded.cost_usd, updated_at = now()
"""

FIGURES = (*COUNTS, "cost_usd")
DEFAULT_DAYS = 30  # what `docflow usage` and GET /v1/usage show without --from/from
MAX_DAYS = 366  # the longest range GET /v1/usage answers in one request


def default_range(start: date | None, end: date | None) -> tuple[date, date]:
    """The days to report: up to today, from DEFAULT_DAYS - 1 days before the last one unless given."""
    end = end or datetime.now(UTC).date()
    return start or end - timedelta(days=DEFAULT_DAYS - 1), end


def record(
    store: Store, doc_id: str, step: str, lines: Sequence[dict[str, Any]], day: date | None = None
) -> None:
    """Add one step's metered lines (`Meter.rows`) to the day's usage of the document's tenant."""
    if not lines:
        return
    lines = sorted(lines, key=lambda line: (line["backend"], line["model"]))
    params = {
        "day": day or datetime.now(UTC).date(),
        "step": step,
        "doc_id": doc_id,
        "lines": Jsonb(lines),
    }
    with store.tx() as conn:
        # one round trip, and the commit does not wait for the WAL flush (the WAL writer flushes it within a
        # fraction of a second): only a Postgres crash in that window would lose the line, never the step
        psycopg.ClientCursor(conn).execute("SET LOCAL synchronous_commit = off; " + _RECORD, params)


def daily(
    store: Store, tenant: str | None = None, start: date | None = None, end: date | None = None
) -> list[dict[str, Any]]:
    """Per tenant and day (those with any usage, in order): the totals and `backends`, the figures of each
    backend and model (the remote ones' calls, tokens, pages billed and cost among them)."""
    with store.tx() as conn:
        rows = conn.execute(
            f"""SELECT tenant, day, backend, model, {", ".join(f"sum({c}) AS {c}" for c in FIGURES)}
                FROM docflow.usage
                WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
                  AND (%(start)s::date IS NULL OR day >= %(start)s)
                  AND (%(end)s::date IS NULL OR day <= %(end)s)
                GROUP BY tenant, day, backend, model ORDER BY day, tenant, backend, model""",
            {"tenant": tenant, "start": start, "end": end},
        ).fetchall()
    days: dict[tuple[str, date], dict[str, Any]] = {}
    for row in rows:
        figures = {c: _number(c, row[c]) for c in FIGURES}
        total = days.setdefault(
            (row["tenant"], row["day"]),
            {
                "tenant": row["tenant"],
                "day": row["day"].isoformat(),
                **dict.fromkeys(FIGURES, 0),
                "backends": [],
            },
        )
        for c in FIGURES:
            total[c] += figures[c]
        total["backends"].append({"backend": row["backend"], "model": row["model"], **figures})
    for total in days.values():
        total["credits"] = round(total["credits"], 4)
        total["cost_usd"] = round(total["cost_usd"], 6)
    return list(days.values())


def _number(column: str, value: Any) -> int | float:
    return float(value or 0) if column in ("credits", "cost_usd") else int(value or 0)
