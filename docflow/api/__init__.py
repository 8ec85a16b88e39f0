"""docflow's HTTP service (FastAPI): uploads, URL ingest, status, live progress, search and ask.

`create_app` builds the app; `serve` runs it with uvicorn (`docflow api`)."""

from docflow.api.server import create_app, serve

__all__ = ["create_app", "serve"]
