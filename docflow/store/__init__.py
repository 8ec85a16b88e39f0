"""docflow's Postgres tables: migrations, per-document writes, queries and hybrid search."""

from docflow.store.db import Store
from docflow.store.search import hybrid_search

__all__ = ["Store", "hybrid_search"]
