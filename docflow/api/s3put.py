"""The upload hot path's S3 write: one SigV4-signed PUT over a shared asyncio connection pool.

boto3 is synchronous (a worker thread per request) and costs ~2.5 ms of CPU per `put_object` (~7 ms for
`upload_file` + `head_object`); under a burst of uploads that CPU is what the acknowledgements wait for. This
writer signs with botocore's own SigV4 signer (the payload hash is the sha256 the upload already computed, so
the body is never hashed twice) and streams the body from memory or from the spilled file. The object gets
the same `sha256` metadata as `Bucket.upload_file`, so the sensor need not re-hash it.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx

from docflow.bucket import SHA256_META
from docflow.errors import BackendUnavailable
from docflow.settings import Settings

CHUNK = 1024 * 1024
ATTEMPTS = 4  # like boto3's standard retry mode: connection errors, 5xx, throttling


class S3Writer:
    """PUTs objects into the settings' bucket (embedded SeaweedFS, MinIO, R2 or AWS S3, path-style)."""

    def __init__(self, settings: Settings, max_connections: int = 64) -> None:
        from botocore.auth import S3SigV4Auth
        from botocore.credentials import Credentials

        endpoint = settings.s3_endpoint_url
        if not endpoint or endpoint == "aws":
            endpoint = f"https://s3.{settings.s3_region}.amazonaws.com"
        self.base = f"{endpoint.rstrip('/')}/{quote(settings.bucket)}/"
        if settings.aws_access_key_id:
            secret = (
                settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else ""
            )
            credentials = Credentials(settings.aws_access_key_id, secret)
        else:  # the environment, a profile or an instance role, as boto3 finds them (refreshed when due)
            import boto3

            credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise BackendUnavailable("no AWS credentials for the S3 bucket")
        self._credentials = credentials
        self._signer = S3SigV4Auth
        self.region = settings.s3_region
        self.max_connections = max_connections
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=self.max_connections, max_keepalive_connections=self.max_connections
                ),
                timeout=httpx.Timeout(60.0, connect=5.0),
            )
        return self._client

    def connect(self) -> None:
        """Create the connection pool now (its TLS context takes a few ms of CPU)."""
        self._http()

    def _signed_headers(self, url: str, size: int, sha256: str) -> dict[str, str]:
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(
            method="PUT",
            url=url,
            headers={
                "Content-Length": str(size),
                "x-amz-content-sha256": sha256,
                f"x-amz-meta-{SHA256_META}": sha256,
            },
        )
        credentials = self._credentials.get_frozen_credentials()
        self._signer(credentials, "s3", self.region).add_auth(request)
        return dict(request.headers.items())

    async def put(self, key: str, body: bytes | Path, size: int, sha256: str) -> str:
        """Write `body` (bytes, or a file streamed in 1 MiB blocks) to `key`; returns the etag."""
        url = self.base + quote(key, safe="/~")
        delay = 0.05
        for attempt in range(1, ATTEMPTS + 1):
            try:
                content = body if isinstance(body, bytes) else _blocks(body)
                r = await self._http().put(
                    url, content=content, headers=self._signed_headers(url, size, sha256)
                )
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS:
                    raise BackendUnavailable(f"S3 put {key} failed: {exc!r}") from exc
            else:
                if r.status_code == 200:
                    return r.headers.get("etag", "").strip('"')
                if attempt == ATTEMPTS or (r.status_code < 500 and r.status_code != 429):
                    raise BackendUnavailable(f"S3 put {key} failed: {r.status_code} {r.text[:300]}")
            await asyncio.sleep(delay)
            delay *= 4

        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _blocks(path: Path) -> AsyncIterator[bytes]:
    f = await anyio.open_file(path, "rb")
    try:
        while block := await f.read(CHUNK):
            yield block
    finally:
        await f.aclose()
