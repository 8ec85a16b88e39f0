"""Kept for `docflow key` in cli.py (owned elsewhere), which imports `create_api_key` from here; the code and
its SQL live in docflow.store.tenants."""

from docflow.store.tenants import create_api_key

__all__ = ["create_api_key"]
