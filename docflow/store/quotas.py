"""Daily quotas (new documents and bytes per tenant and UTC day), counted in Postgres at every entrance: the
API's upload registration (docflow.store.tenants) and the owner's registrations (the S3 sensor, `docflow run`,
`docflow retry --failed`) use the same SQL below, so there is one copy of the rules.

The lock: the upsert of the tenant's usage row (INSERT ... ON CONFLICT DO UPDATE) locks that row until the
transaction commits, so concurrent registrations of a tenant are counted one after the other, each against
the latest count. A count over the limit becomes NULL, whose NOT NULL violation undoes the statement.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg

from docflow.settings import Settings

if TYPE_CHECKING:
    from docflow.store.db import Store

QUOTA_ERROR = "quota exceeded"  # how a document refused by the quota starts its error


@dataclass(frozen=True)
class Limits:
    """The defaults from settings; a tenant's own (docflow.tenants) take precedence in the SQL."""

    docs_per_day: int
    bytes_per_day: int

    @classmethod
    def of(cls, settings: Settings) -> "Limits":
        return cls(settings.api_docs_per_day, settings.api_bytes_per_day)


def seconds_to_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()) + 1)


def today() -> date:
    return datetime.now(UTC).date()


# The tenant's daily limits (its own, or the defaults): the first CTE of every counting statement.
LIMITS = """WITH lim AS (
    SELECT coalesce(nullif((SELECT docs_per_day FROM docflow.tenants WHERE tenant = %(tenant)s), 0),
                    %(docs_default)s) AS docs,
           coalesce(nullif((SELECT bytes_per_day FROM docflow.tenants WHERE tenant = %(tenant)s), 0),
                    %(bytes_default)s) AS bytes
)"""

# Counts the rows of a CTE `counted (documents, bytes)` the statement defines before it (no row: nothing to
# count). A total over a limit becomes NULL: the NOT NULL violation rolls the statement back.
CHARGE = """charged AS (
    INSERT INTO docflow.quota_usage AS q (tenant, day, documents, bytes)
    SELECT %(tenant)s, %(day)s, CASE WHEN counted.documents > lim.docs THEN NULL ELSE counted.documents END,
           CASE WHEN counted.bytes > lim.bytes THEN NULL ELSE counted.bytes END
    FROM counted, lim
    ON CONFLICT (tenant, day) DO UPDATE SET
        documents = CASE WHEN q.documents + excluded.documents > (SELECT docs FROM lim) THEN NULL
                         ELSE q.documents + excluded.documents END,
        bytes = CASE WHEN q.bytes + excluded.bytes > (SELECT bytes FROM lim) THEN NULL
                     ELSE q.bytes + excluded.bytes END
    RETURNING documents
)"""

_CHARGE_ONE = f"""{LIMITS}, counted AS (SELECT 1 AS documents, %(size)s::bigint AS bytes), {CHARGE}
SELECT count(*) AS charged FROM charged"""

_CHARGE_IN_SAVEPOINT = f"SAVEPOINT quota_charge; {_CHARGE_ONE}; RELEASE SAVEPOINT quota_charge"

_LIMITS_NOW = f"{LIMITS} SELECT docs, bytes FROM lim"


def params(tenant: str, defaults: Limits) -> dict:
    return {
        "tenant": tenant,
        "day": today(),
        "docs_default": defaults.docs_per_day,
        "bytes_default": defaults.bytes_per_day,
    }


def message(column: str | None, limits: Limits) -> str:
    """The refusal for the limit whose column (`documents` or `bytes` of quota_usage) went over."""
    if column == "bytes":
        return f"{QUOTA_ERROR}: {limits.bytes_per_day} bytes per day"
    return f"{QUOTA_ERROR}: {limits.docs_per_day} new documents per day"


def is_quota_error(error: str | None) -> bool:
    return bool(error) and error.startswith(QUOTA_ERROR)  # type: ignore[union-attr]


def charge(conn: psycopg.Connection, tenant: str, size: int, defaults: Limits) -> str | None:
    """Count one new document of `size` bytes against the tenant's quota for today, inside the caller's
    transaction (a dict-row connection; the usage row stays locked until it commits). None when counted;
    else the refusal ('quota exceeded: ...'), with nothing counted and the caller's transaction still usable
    (the statement ran in a savepoint)."""
    values = {**params(tenant, defaults), "size": size}
    try:  # one round trip: the savepoint, the statement and its release as one query string
        psycopg.ClientCursor(conn).execute(_CHARGE_IN_SAVEPOINT, values)
        return None
    except psycopg.errors.NotNullViolation as exc:
        if exc.diag.table_name != "quota_usage":
            raise
        conn.execute("ROLLBACK TO SAVEPOINT quota_charge")
        row = conn.execute(_LIMITS_NOW, values).fetchone()
        return message(exc.diag.column_name, Limits(int(row["docs"]), int(row["bytes"])))


def set_own_limits(owner: "Store", tenant: str, docs_per_day: int | None, bytes_per_day: int | None) -> None:
    """Set the tenant's own daily limits on the owner's store (`docflow quota`): only those given (not None);
    0 = back to the default from settings."""
    with owner.tx() as conn:
        conn.execute(
            """INSERT INTO docflow.tenants AS t (tenant, docs_per_day, bytes_per_day)
               VALUES (%(tenant)s, nullif(%(docs)s, 0), nullif(%(bytes)s, 0))
               ON CONFLICT (tenant) DO UPDATE SET
                   docs_per_day = CASE WHEN %(docs)s::integer IS NULL THEN t.docs_per_day
                                       ELSE excluded.docs_per_day END,
                   bytes_per_day = CASE WHEN %(bytes)s::bigint IS NULL THEN t.bytes_per_day
                                        ELSE excluded.bytes_per_day END,
                   updated_at = now()""",
            {"tenant": tenant, "docs": docs_per_day, "bytes": bytes_per_day},
        )
