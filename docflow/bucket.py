"""S3 access: keys, tenants, document ids, streaming uploads and listings. No Dagster here."""

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import boto3
import urllib3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from docflow.errors import BackendUnavailable, NotFound

SHA256_META = "sha256"  # x-amz-meta-sha256, written by docflow's uploads so the sensor need not hash
PRIORITY_META = "priority"  # x-amz-meta-priority, set by whoever uploads: the document's run priority
PRIORITY_NAMES = {"high": 10, "normal": 0, "low": -10}
_PRIORITY_SEGMENT = re.compile(r"^priority=([^/]+)$")
_SAFE = re.compile(r"[^a-z0-9_-]+")


def safe_tenant(name: str) -> str:
    """Tenant names become part of partition keys: lower-case letters, digits, '_' and '-' only."""
    tenant = _SAFE.sub("-", name.strip().lower()).strip("-")[:40]
    return tenant or "default"


SLUG_CHARS = 40  # of the file name in a document id: enough to recognise it in the Dagster UI's list
DOC_ID_HASH = 16  # hex digits of the content hash in a document id (64 bits, per tenant and file name)
_SLUG = re.compile(r"[^a-z0-9]+")


def doc_slug(filename: str) -> str:
    """The file name's stem as lower-case ASCII words joined by '-' (accents dropped, at most SLUG_CHARS,
    cut at a word boundary when one is near), '' when nothing is left. Only [a-z0-9-]: valid in a Dagster
    partition key and typed as is into the UI's partition filter."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    ascii_stem = unicodedata.normalize("NFKD", stem.casefold()).encode("ascii", "ignore").decode()
    slug = _SLUG.sub("-", ascii_stem.lower()).strip("-")
    if len(slug) > SLUG_CHARS:
        cut = slug[: SLUG_CHARS + 1].rfind("-")
        slug = slug[: cut if cut >= SLUG_CHARS // 2 else SLUG_CHARS].strip("-")
    return slug


def make_doc_id(tenant: str, sha256: str, filename: str) -> str:
    """The id a document is registered under, also its Dagster partition key: `<tenant>-<slug of the file
    name>-<first DOC_ID_HASH hex digits of the sha256>`, or `<tenant>-<hash>` for a name with no letters or
    digits. The name is the one the bytes were first registered under; identity is the content (same tenant
    + same bytes = one document, whatever it is called later), which registration enforces by the tenant and
    sha256 and answers with the id stored for them."""
    return "-".join(part for part in (safe_tenant(tenant), doc_slug(filename), sha256[:DOC_ID_HASH]) if part)


def legacy_doc_id(tenant: str, sha256: str) -> str:
    """The id documents were registered under before ids named the file: `<tenant>-<32 hex>`. `docflow
    rekey` renames such documents."""
    return f"{safe_tenant(tenant)}-{sha256[:32]}"


def tenant_of(key: str, prefix: str, default: str = "default") -> str:
    """`<prefix><tenant>/<path>` -> tenant; a file directly under the prefix belongs to the default tenant."""
    rest = key[len(prefix) :] if key.startswith(prefix) else key
    head, sep, _ = rest.partition("/")
    return safe_tenant(head) if sep and head else safe_tenant(default)


def parse_priority(value: str) -> int | None:
    """A run priority as an uploader writes it: an integer from -100 to 100 (higher runs first, as Dagster's
    `dagster/priority`) or `high`, `normal`, `low`; None when it is neither."""
    value = value.strip().lower()
    if value in PRIORITY_NAMES:
        return PRIORITY_NAMES[value]
    try:
        number = int(value)
    except ValueError:
        return None
    return number if -100 <= number <= 100 else None


def priority_of(key: str, metadata: dict[str, str]) -> int:
    """The priority a bucket upload asks for: its `priority` metadata (x-amz-meta-priority), else a
    `priority=<value>` folder in its key (`incoming/acme/priority=high/scan.pdf`), else 0. A value that is
    not a priority counts as none."""
    if (meta := metadata.get(PRIORITY_META)) is not None and (found := parse_priority(meta)) is not None:
        return found
    for segment in PurePosixPath(key).parts[:-1]:
        if (m := _PRIORITY_SEGMENT.match(segment)) and (found := parse_priority(m.group(1))) is not None:
            return found
    return 0


def filename_of(key: str) -> str:
    return PurePosixPath(key).name


MAX_NAME_CHARS = 255  # NAME_MAX of common file systems: file names are shown, downloaded and saved
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def unsafe_key(key: str) -> str | None:
    """Why an object key is unsafe to take in (control characters, `..` segments, an over-long name), else
    None. Such an object is registered like any other and its document fails with this reason, so it
    shows among the dead letters instead of vanishing; rename the object to have it processed."""
    if match := _CONTROL.search(key):
        return f"the key contains the control character {match.group()!r}"
    if ".." in key.split("/"):
        return "the key contains a '..' path segment"
    if len(name := filename_of(key)) > MAX_NAME_CHARS:
        return f"the file name is too long ({len(name):,} characters, over {MAX_NAME_CHARS})"
    return None


def sha256_stream(stream: IO[bytes], chunk: int = 1024 * 1024) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while block := stream.read(chunk):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    last_modified: datetime


class Hashed(NamedTuple):
    sha256: str
    downloaded: bool  # no sha256 in the metadata: the bytes were read to hash them
    metadata: dict[str, str]


def _info(key: str, response: dict) -> ObjectInfo:
    """From a HeadObject or GetObject response."""
    return ObjectInfo(key, response["ETag"].strip('"'), response["ContentLength"], response["LastModified"])


class Bucket:
    """A thin client over one S3 bucket (AWS, MinIO, R2 or the embedded SeaweedFS)."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.name = bucket
        self.endpoint_url = endpoint_url
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                s3={"addressing_style": "path"},
            ),
        )

    # --- writes ------------------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.name)
        except ClientError:
            with _s3_errors("create bucket"):
                self._client.create_bucket(Bucket=self.name)

    def upload_file(self, path: Path, key: str, sha256: str | None = None) -> str:
        """Stream a local file to `key` with its sha256 in the object metadata; returns the etag."""
        if sha256 is None:
            with path.open("rb") as f:
                sha256, _ = sha256_stream(f)
        with _s3_errors(f"upload {key}"):
            self._client.upload_file(str(path), self.name, key, ExtraArgs={"Metadata": {SHA256_META: sha256}})
            return self.head(key).etag

    def put_bytes(
        self, key: str, data: bytes, sha256: str | None = None, metadata: dict[str, str] | None = None
    ) -> str:
        """Write an object with its sha256 and any other user `metadata` (e.g. PRIORITY_META)."""
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        with _s3_errors(f"put {key}"):
            response = self._client.put_object(
                Bucket=self.name, Key=key, Body=data, Metadata={**(metadata or {}), SHA256_META: sha256}
            )
        return response["ETag"].strip('"')

    def delete(self, key: str) -> None:
        with _s3_errors(f"delete {key}"):
            self._client.delete_object(Bucket=self.name, Key=key)

    # --- reads -------------------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        with _s3_errors(f"head {key}"):
            return _info(key, self._client.head_object(Bucket=self.name, Key=key))

    def sha256_of(self, key: str) -> Hashed:
        """The content hash of an object: from its metadata when docflow uploaded it, else by streaming it;
        with the object's user metadata (what the uploader set as x-amz-meta-*)."""
        with _s3_errors(f"head {key}"):
            meta = self._client.head_object(Bucket=self.name, Key=key).get("Metadata", {})
        if meta.get(SHA256_META):
            return Hashed(meta[SHA256_META], False, meta)
        with _s3_errors(f"get {key}"):
            body = self._client.get_object(Bucket=self.name, Key=key)["Body"]
            return Hashed(sha256_stream(body)[0], True, meta)

    def get(self, key: str, max_bytes: int) -> tuple[ObjectInfo, bytes | None]:
        """One request for an object's info and bytes; no bytes (None, the body left unread) when it is
        larger than `max_bytes`."""
        with _s3_errors(f"get {key}"):
            r = self._client.get_object(Bucket=self.name, Key=key)
            info = _info(key, r)
            if info.size > max_bytes:
                r["Body"].close()
                return info, None
            return info, r["Body"].read()

    def get_bytes(self, key: str) -> bytes:
        with _s3_errors(f"get {key}"):
            return self._client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix` (after the key `start_after`), page by page (1000 keys a request).

        The sensor lists the whole prefix every few seconds, and botocore's response parser costs about
        0.2 ms of CPU per key (a core's fifth, steadily, for a few thousand objects). So each page is a
        request boto3 signs (a presigned ListObjectsV2 URL: any endpoint, any credentials) and docflow
        sends and reads with ElementTree, about twenty times cheaper. Keys come URL-encoded
        (`encoding-type=url`, as boto3 asks for them too) so that any key survives the XML."""
        params = {"Bucket": self.name, "Prefix": prefix, "EncodingType": "url"}
        if start_after:
            params["StartAfter"] = start_after
        while True:
            with _s3_errors(f"list {prefix!r}"):
                url = self._client.generate_presigned_url("list_objects_v2", Params=params, ExpiresIn=300)
                page = _list_page(self._http, url)
            yield from page.objects
            if not page.next_token:
                return
            params = {**params, "ContinuationToken": page.next_token}

    @functools.cached_property
    def _http(self) -> urllib3.PoolManager:
        retries = urllib3.Retry(total=3, backoff_factor=0.3, status_forcelist=(429, 500, 502, 503, 504))
        return urllib3.PoolManager(retries=retries, timeout=urllib3.Timeout(connect=5, read=60))

    def url(self, key: str) -> str:
        base = self.endpoint_url or "https://s3.amazonaws.com"
        return f"{base.rstrip('/')}/{self.name}/{key}"


@dataclass(frozen=True)
class _Page:
    objects: list[ObjectInfo]
    next_token: str | None


_S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _list_page(http: urllib3.PoolManager, url: str) -> _Page:
    """GET one ListObjectsV2 page and read it (the S3 XML; S3 and compatible servers use this namespace)."""
    try:
        response = http.request("GET", url)
    except urllib3.exceptions.HTTPError as exc:
        raise BackendUnavailable(f"S3 list failed: {exc}") from exc
    try:
        root = ElementTree.fromstring(response.data)
    except ElementTree.ParseError as exc:  # e.g. a proxy's HTML error page
        raise BackendUnavailable(f"S3 list: unreadable answer (HTTP {response.status})") from exc
    if response.status != 200:
        code = root.findtext("Code") or str(response.status)
        error = {"Code": code, "Message": root.findtext("Message") or ""}
        raise ClientError({"Error": error}, "ListObjectsV2")  # mapped by _s3_errors like boto3's own
    objects = [
        ObjectInfo(
            unquote_plus(o.findtext(f"{_S3}Key", "")),
            o.findtext(f"{_S3}ETag", "").strip('"'),
            int(o.findtext(f"{_S3}Size", "0")),
            datetime.fromisoformat(o.findtext(f"{_S3}LastModified", "").replace("Z", "+00:00")),
        )
        for o in root.iter(f"{_S3}Contents")
    ]
    truncated = root.findtext(f"{_S3}IsTruncated") == "true"
    return _Page(objects, root.findtext(f"{_S3}NextContinuationToken") if truncated else None)


class _s3_errors:
    """Turn boto errors into docflow's tree: a missing key is NotFound, the rest may pass (retryable)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            return False
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}:
                raise NotFound(f"S3 {self.what}: {code}") from exc
            raise BackendUnavailable(f"S3 {self.what} failed: {code} {exc}") from exc
        if isinstance(exc, BotoCoreError):
            raise BackendUnavailable(f"S3 {self.what} failed: {exc}") from exc
        return False
