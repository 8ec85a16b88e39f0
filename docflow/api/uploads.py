"""Taking a document in: take the bytes as they arrive while hashing them (small documents in memory, larger
ones spilled to a temporary file: never a whole large file in memory, the size limit enforced as the bytes
arrive), sniff the type from the first bytes, then register the document with its quota and write it to the
bucket, where the S3 sensor picks it up."""

import asyncio
import hashlib
import re
import secrets
import shutil
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from docflow.api.s3put import S3Writer
from docflow.api.spool import Spool
from docflow.bucket import make_doc_id
from docflow.errors import BadDocument, DocflowError
from docflow.models import Document
from docflow.netguard import TooLarge
from docflow.sniff import OLE, ZIP, by_name, sniff_content_type
from docflow.store.tenants import Registrar, unregister_upload

HEAD_BYTES = 64 * 1024  # what the type is sniffed from
MEMORY_BYTES = 1024 * 1024  # a document up to this size stays in memory, a larger one in a temporary file
SPOOL_MAX_RECORDS = (
    5000  # spooled uploads not yet in the bucket (per process) before uploads bypass the spool
)
MAX_FIELD_BYTES = 1024  # a non-file form field (priority, passthrough)
_CONTAINERS = (ZIP, OLE)  # the head alone cannot tell a .docx from a .zip: look at the whole file


class BadUpload(DocflowError):
    """The request is malformed (no file part, a bad multipart body, an empty file...)."""


@dataclass
class Staged:
    """A document's bytes, hashed on the way in: in memory up to MEMORY_BYTES, else in a temporary file."""

    filename: str
    max_bytes: int
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    _digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    _memory: bytearray | None = field(default_factory=bytearray)
    _folder: Path | None = None
    _file: IO[bytes] | None = None

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    @property
    def body(self) -> bytes | Path:
        """The bytes (a small document) or the temporary file holding them."""
        if self._memory is not None:
            return bytes(self._memory)
        assert self._folder is not None
        return self._folder / "body"

    def write(self, block: bytes) -> None:
        self.size += len(block)
        if self.size > self.max_bytes:
            raise TooLarge(f"the document is larger than the limit of {self.max_bytes} bytes")
        if len(self.head) < HEAD_BYTES:
            self.head += block[: HEAD_BYTES - len(self.head)]
        self._digest.update(block)
        if self._memory is not None and self.size > MEMORY_BYTES:
            self._folder = Path(tempfile.mkdtemp(prefix="docflow-upload-"))
            self._file = (self._folder / "body").open("wb")
            self._file.write(self._memory)
            self._memory = None
        if self._memory is not None:
            self._memory += block
        else:
            assert self._file is not None
            self._file.write(block)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def cleanup(self) -> None:
        self.close()
        self._memory = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def content_type(self) -> str:
        # a container's type from its name only after the whole file was looked at (a .docm is a DOCX)
        sniffed = sniff_content_type(bytes(self.head), self.filename, by_extension=False)
        if sniffed in _CONTAINERS:
            body = self.body
            whole = body if isinstance(body, bytes) else body.read_bytes()
            sniffed = sniff_content_type(whole, self.filename, by_extension=False)
        return by_name(sniffed, self.filename)


def stage(filename: str, max_bytes: int) -> Staged:
    return Staged(safe_filename(filename), max_bytes)


def safe_filename(name: str, default: str = "upload") -> str:
    """The last path component, without control characters, at most 150 characters (an S3 key part)."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/")).rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    name = re.sub(r"\s+", " ", name)
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 150 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:150]
    return name or default


def filename_from(url: str, disposition: str) -> str:
    if disposition:
        _, options = parse_options_header(disposition)
        for key in (b"filename*", b"filename"):
            value = options.get(key)
            if value:
                text = value.decode("utf-8", "replace")
                return unquote(text.split("''", 1)[-1]) if key == b"filename*" else text
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or "download"


async def read_multipart(
    content_type: str, chunks: AsyncIterator[bytes], max_bytes: int
) -> tuple[Staged, dict[str, str]]:
    """Stream a multipart/form-data body: the part named `file` goes to a staged file as it arrives, the
    other (small) fields are returned as text."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadUpload("multipart/form-data without a boundary")
    state: dict = {
        "fields": {},
        "staged": None,
        "name": None,
        "value": bytearray(),
        "headers": {},
        "field": b"",
    }

    def on_part_begin() -> None:
        state["headers"], state["name"], state["value"] = {}, None, bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        key = state["field"].lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end() -> None:
        state["field"] = b""

    def on_headers_finished() -> None:
        _, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = opts.get(b"name", b"").decode("utf-8", "replace")
        if state["name"] == "file":
            if state["staged"] is not None:
                raise BadUpload("more than one part named 'file'")
            filename = opts.get(b"filename", b"upload").decode("utf-8", "replace")
            state["staged"] = stage(filename, max_bytes)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["name"] == "file":
            state["staged"].write(data[start:end])
        else:
            state["value"] += data[start:end]
            if len(state["value"]) > MAX_FIELD_BYTES:
                raise BadUpload(f"form field {state['name']!r} is too long")

    def on_part_end() -> None:
        if state["name"] and state["name"] != "file":
            state["fields"][state["name"]] = state["value"].decode("utf-8", "replace")

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()  # python-multipart does not check the end: a body cut short would pass
        if parser.state != MultipartState.END:
            raise BadUpload("malformed multipart body: it ends before its closing boundary")
    except DocflowError:
        if state["staged"] is not None:
            state["staged"].cleanup()
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        if state["staged"] is not None:
            state["staged"].cleanup()
        raise BadUpload(f"malformed multipart body: {exc}") from exc
    if state["staged"] is None:
        raise BadUpload("no part named 'file' in the form")
    state["staged"].close()
    return state["staged"], state["fields"]


async def read_raw(chunks: AsyncIterator[bytes], filename: str, max_bytes: int) -> Staged:
    """A request body that is the document itself (any content type but multipart)."""
    staged = stage(filename, max_bytes)
    try:
        async for chunk in chunks:
            staged.write(chunk)
    except BaseException:
        staged.cleanup()
        raise
    staged.close()
    return staged


@dataclass(frozen=True)
class Accepted:
    doc_id: str
    key: str
    filename: str
    size: int
    content_type: str
    duplicate: bool  # the tenant already had these bytes: nothing new is processed


@dataclass
class Timings:
    """Where an upload's time went (ms), for the Server-Timing header and `docflow bench --only api`."""

    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + (now - started) * 1000
        return now

    def header(self) -> str:
        return ", ".join(f"{k};dur={v:.2f}" for k, v in self.stages.items())


async def accept(
    registrar: Registrar,
    s3: S3Writer,
    spool: Spool | None,
    tenant: str,
    bucket: str,
    prefix: str,
    staged: Staged,
    priority: int,
    passthrough: bool,
    check_readable: Callable[[str, str], None],
    timings: Timings | None = None,
) -> Accepted:
    """Check the staged bytes, register the document (quota counted) and store the bytes durably before the
    202: a small document in the spool (fsync'd, on its way to the bucket), a larger one (or with no spool)
    in the bucket itself. The same bytes for the same tenant are the same document: registered once, written
    once."""
    timings = timings or Timings()
    if staged.size == 0:
        raise BadDocument("the file is empty (0 bytes)")
    content_type = staged.content_type()
    check_readable(content_type, staged.filename)  # what the configured parse backend reads
    # A passthrough document's id and key do not carry its file name: the id is its Dagster partition key
    # and the key is in the sensor's cursor, both kept in Dagster's records (run keys, sensor ticks) after
    # the document is deleted. The name stays in its row (for sniffing and the webhook) until then.
    name = "" if passthrough else staged.filename
    doc_id = make_doc_id(tenant, staged.sha256, name)
    # a new key per registration: bytes deleted and uploaded again are a new object for the sensor's cursor
    key = f"{prefix}{tenant}/api/{staged.sha256[:16]}-{secrets.token_hex(4)}/{name or 'passthrough'}"
    doc = Document(
        doc_id=doc_id,
        tenant=tenant,
        bucket=bucket,
        key=key,
        sha256=staged.sha256,
        size=staged.size,
        content_type=content_type,
        filename=staged.filename,
    )
    started = time.perf_counter()
    # a passthrough flag must not be lost in a crash (the sensor could not rebuild it from the object)
    # the bytes keep the id of their first registration, whatever this upload calls them
    doc_id, new = await registrar.register(doc, priority, passthrough)
    started = timings.add("register", started)
    if not new:
        return Accepted(doc_id, key, staged.filename, staged.size, content_type, duplicate=True)
    body = staged.body
    try:
        if spool is not None and isinstance(body, bytes) and spool.outstanding < SPOOL_MAX_RECORDS:
            await spool.put(key, staged.sha256, body)
            timings.add("spool", started)
        else:  # large, no spool, or the bucket is not keeping up: straight to the bucket
            await s3.put(key, body, staged.size, staged.sha256)
            timings.add("s3_put", started)
    except BaseException:
        await asyncio.shield(unregister_upload(registrar.db, tenant, doc_id, staged.size))
        raise
    return Accepted(doc_id, key, staged.filename, staged.size, content_type, duplicate=False)
