"""Taking a document in: stream the bytes to a temporary file while hashing them (never the whole file in
memory, the size limit enforced as the bytes arrive), sniff the type from the first bytes, then register the
document with its quota and write it to the bucket, where the S3 sensor picks it up."""

import hashlib
import re
import secrets
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from python_multipart.multipart import MultipartParser, parse_options_header

from docflow import ingest
from docflow.api.db import Limits, TenantStore, register_upload, unregister_upload
from docflow.api.netguard import TooLarge
from docflow.bucket import make_doc_id
from docflow.errors import BadDocument, DocflowError, UnsupportedFormat
from docflow.models import Document
from docflow.pipeline import Runtime
from docflow.sniff import BINARY, OLE, ZIP, sniff_content_type

HEAD_BYTES = 64 * 1024  # what the type is sniffed from
MAX_FIELD_BYTES = 1024  # a non-file form field (priority, passthrough)
_CONTAINERS = (ZIP, OLE)  # the head alone cannot tell a .docx from a .zip: look at the whole file


class BadUpload(DocflowError):
    """The request is malformed (no file part, a bad multipart body, an empty file...)."""


@dataclass
class Staged:
    """A document's bytes in a temporary folder, hashed on the way in."""

    folder: Path
    filename: str
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    _digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    max_bytes: int = 0

    def __post_init__(self) -> None:
        self._file = (self.folder / self.filename).open("wb")

    @property
    def path(self) -> Path:
        return self.folder / self.filename

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def write(self, block: bytes) -> None:
        self.size += len(block)
        if self.size > self.max_bytes:
            raise TooLarge(f"the document is larger than the limit of {self.max_bytes} bytes")
        if len(self.head) < HEAD_BYTES:
            self.head += block[: HEAD_BYTES - len(self.head)]
        self._digest.update(block)
        self._file.write(block)

    def close(self) -> None:
        self._file.close()

    def cleanup(self) -> None:
        self._file.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def content_type(self) -> str:
        sniffed = sniff_content_type(bytes(self.head), self.filename)
        if sniffed in _CONTAINERS:
            sniffed = sniff_content_type(self.path.read_bytes(), self.filename)
        return sniffed


def stage(filename: str, max_bytes: int) -> Staged:
    return Staged(
        Path(tempfile.mkdtemp(prefix="docflow-upload-")), safe_filename(filename), max_bytes=max_bytes
    )


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
        parser.finalize()
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


def supported_types() -> tuple[str, ...]:
    from docflow.backends.parse.local import SUPPORTED_TYPES

    return SUPPORTED_TYPES


def accept(rt: Runtime, staged: Staged, priority: int, passthrough: bool, limits: Limits) -> Accepted:
    """Check the staged bytes, register the document (quota counted) and write it to the bucket.
    The same bytes for the same tenant are the same document: registered once, written once."""
    assert isinstance(rt.store, TenantStore)
    tenant = rt.store.tenant
    if staged.size == 0:
        raise BadDocument("the file is empty (0 bytes)")
    content_type = staged.content_type()
    if content_type == BINARY or content_type not in supported_types():
        raise UnsupportedFormat(f"unsupported document type {content_type} ({staged.filename})")
    doc_id = make_doc_id(tenant, staged.sha256)
    # a new key per registration: bytes deleted and uploaded again are a new object for the sensor's cursor
    key = f"{rt.settings.prefix}{tenant}/api/{staged.sha256[:16]}-{secrets.token_hex(4)}/{staged.filename}"
    doc = Document(
        doc_id=doc_id,
        tenant=tenant,
        bucket=rt.bucket.name,
        key=key,
        sha256=staged.sha256,
        size=staged.size,
        content_type=content_type,
        filename=staged.filename,
    )
    if not register_upload(rt.store, doc, priority, passthrough, limits):
        return Accepted(doc_id, key, staged.filename, staged.size, content_type, duplicate=True)
    up = ingest.Upload(
        path=staged.path, key=key, sha256=staged.sha256, doc_id=doc_id, tenant=tenant, size=staged.size
    )
    try:
        ingest.upload(rt.bucket, rt.store, up)
    except BaseException:
        unregister_upload(rt.store, doc_id, staged.size)
        raise
    return Accepted(doc_id, key, staged.filename, staged.size, content_type, duplicate=False)
