"""pandas helpers over docflow's tables and typed views, for analysts and notebooks.

Each function returns a `pandas.DataFrame` with real dtypes (numeric amounts, datetime64 dates), read from
the typed views (one per document type, made from its schema file: `docflow.invoices`, `receipts`,
`contracts`, `resumes`, `financial_statements`, the `revenue_figures` of migration 0002, and the view of any
type added in a data folder: `view("purchase_orders")`) or from `docflow.documents`. The same SQL works in
any client:

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
from docflow.store import analytics as tables

if TYPE_CHECKING:
    import pandas as pd

    from docflow.store import Store


def _pandas() -> Any:
    import pandas  # a core dependency, imported on first use only (it is slow to import)

    return pandas


def _store(settings: Settings | None) -> "Store":
    from docflow.runtime import runtime  # starts the embedded services when nothing is configured

    return runtime(settings).store


def _frame(result: tables.Rows, types: dict[str, str] | None = None) -> "pd.DataFrame":
    """A DataFrame of the rows with real dtypes: datetime64 dates, float64 amounts (`types`: column -> SQL
    type, as store.analytics.views gives them)."""
    types = {"classification_confidence": "numeric", **(types or {})}
    pandas = _pandas()
    columns, rows = result
    frame = pandas.DataFrame.from_records(rows, columns=columns)
    for column in frame.columns:
        if types.get(column) == "date":
            frame[column] = pandas.to_datetime(frame[column], errors="coerce")
        elif types.get(column) == "numeric":
            frame[column] = pandas.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def query(
    sql: str, params: Sequence[Any] | dict[str, Any] = (), settings: Settings | None = None
) -> "pd.DataFrame":
    """Any SQL against docflow's database as a DataFrame (columns in the order of the SELECT)."""
    columns, rows = tables.query(_store(settings), sql, params)
    return _pandas().DataFrame.from_records(rows, columns=columns)


def view(name: str, tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    """One typed view (`invoices`, `receipts`, ...) as a DataFrame, optionally for one tenant."""
    settings = settings if settings is not None else Settings()  # the types of DOCFLOW_RULES_PATH
    known = tables.views(settings.rules_path)
    if name not in known:
        raise ValueError(f"unknown view {name!r}; known: {', '.join(known)}")
    return _frame(tables.view(_store(settings), name, tenant, settings.rules_path), known[name])


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
    return _frame(tables.documents(_store(settings), tenant, status))


def doc_type_counts(tenant: str | None = None, settings: Settings | None = None) -> "pd.DataFrame":
    """Documents per type (unclassified ones as type None): columns doc_type, documents, mean_confidence."""
    return _frame(tables.doc_type_counts(_store(settings), tenant))
