"""pandas helpers over docflow's tables and typed views, for analysts and notebooks.

Each function returns a `pandas.DataFrame` with real dtypes (numeric amounts, datetime64 dates), read from
the typed views (migrations 0002, 0007: `docflow.invoices`, `receipts`, `contracts`, `resumes`,
`financial_statements`, `revenue_figures`) or from `docflow.documents`. The same SQL works in any client:

    SELECT vendor_name, currency, sum(total_amount) FROM docflow.invoices GROUP BY 1, 2;

    >>> from docflow import analytics
    >>> analytics.invoices(tenant="acme").groupby("vendor_name").total_amount.sum()

A value the extractor kept but flagged implausible (an identifier read as a total, a date before 1900;
see docflow.schemas.plausibility) is NaN/NaT in its typed column; `validation_errors` says why.

Settings are resolved like everywhere else (`DOCFLOW_DATABASE_URL`, or the embedded Postgres, started on
demand). pandas is imported on first use.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from docflow.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

# typed views and the columns that hold dates (converted to datetime64 for pandas)
VIEWS: dict[str, tuple[str, ...]] = {
    "invoices": ("invoice_date", "due_date"),
    "receipts": ("receipt_date",),
    "contracts": ("agreement_date", "effective_date", "expiration_date"),
    "resumes": (),
    "financial_statements": ("period_end",),
    "revenue_figures": ("period_end",),
}
_NUMERIC = {"total_amount", "tax_amount", "tax_rate", "total", "value", "classification_confidence"}


def _pandas() -> Any:
    import pandas  # a core dependency, imported on first use only (it is slow to import)

    return pandas


def query(
    sql: str, params: Sequence[Any] | dict[str, Any] = (), settings: Settings | None = None
) -> "pd.DataFrame":
    """Any SQL against docflow's database as a DataFrame (columns in the order of the SELECT)."""
    from docflow import services

    pandas = _pandas()
    store = services.runtime(settings).store
    with store.tx() as conn:
        cursor = conn.execute(sql, params)
        rows = cursor.fetchall()
        columns = [c.name for c in cursor.description or []]
    return pandas.DataFrame.from_records(rows, columns=columns)


def view(name: str, tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    """One typed view (`invoices`, `receipts`, ...) as a DataFrame, optionally for one tenant."""
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; known: {', '.join(VIEWS)}")
    where, params = ("WHERE tenant = %s", [tenant]) if tenant else ("", [])
    frame = query(f"SELECT * FROM docflow.{name} {where} ORDER BY doc_id", params, settings)
    return _typed(frame, VIEWS[name])


def _typed(frame: "pd.DataFrame", date_columns: tuple[str, ...]) -> "pd.DataFrame":
    pandas = _pandas()
    for column in frame.columns:
        if column in date_columns:
            frame[column] = pandas.to_datetime(frame[column], errors="coerce")
        elif column in _NUMERIC:
            frame[column] = pandas.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def invoices(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    return view("invoices", tenant, settings)


def receipts(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    return view("receipts", tenant, settings)


def contracts(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    return view("contracts", tenant, settings)


def resumes(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    return view("resumes", tenant, settings)


def financial_statements(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    return view("financial_statements", tenant, settings)


def revenue_figures(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    return view("revenue_figures", tenant, settings)


def documents(
    tenant: str | None = None, status: str | None = None, settings: Settings | None = None
) -> "pd.DataFrame":
    """Every document with its status, type and classification confidence."""
    clauses, params = [], []
    if tenant:
        clauses.append("d.tenant = %s")
        params.append(tenant)
    if status:
        clauses.append("d.status = %s")
        params.append(status)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = (
        "SELECT d.doc_id, d.tenant, d.filename, d.key, d.content_type, d.size, d.pages, d.status, d.error, "
        "c.doc_type, c.confidence AS classification_confidence, c.backend AS classify_backend, "
        "d.created_at, d.updated_at "
        "FROM docflow.documents d LEFT JOIN docflow.classifications c USING (doc_id) "
        f"{where} ORDER BY d.created_at, d.doc_id"
    )
    return _typed(query(sql, params, settings), ())


def doc_type_counts(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    """Documents per type (unclassified ones as type None): columns doc_type, documents, mean_confidence."""
    where, params = ("WHERE d.tenant = %s", [tenant]) if tenant else ("", [])
    sql = (
        "SELECT c.doc_type, count(*) AS documents, avg(c.confidence)::float8 AS mean_confidence "
        "FROM docflow.documents d LEFT JOIN docflow.classifications c USING (doc_id) "
        f"{where} GROUP BY c.doc_type ORDER BY count(*) DESC, c.doc_type"
    )
    return query(sql, params, settings)
