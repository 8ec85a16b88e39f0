"""Running the API: uvicorn on the app factory, and the development key `make dev` prints."""

from docflow.settings import Settings, get_settings


def create_app(settings: Settings | None = None, instance=None):
    from docflow.api.app import create_app as build

    return build(settings, instance)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "warning") -> None:
    import uvicorn

    uvicorn.run(
        "docflow.api.server:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=5,
        # longer than a client's or load balancer's idle timeout: otherwise a request sent on a kept-alive
        # connection just as the server closes it fails (the default is 5 s)
        timeout_keep_alive=65,
    )


def development_key(settings: Settings | None = None) -> str:
    """DOCFLOW_API_KEY registered for the default tenant, or a new key for it."""
    from docflow.runtime import runtime
    from docflow.store.tenants import create_api_key

    s = settings or get_settings()
    rt = runtime(s)
    given = s.api_key.get_secret_value() if s.api_key else None
    return create_api_key(rt.store, s.default_tenant, name="development", key=given)
