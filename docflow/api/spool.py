"""A durable upload spool: the bytes of a small upload are acknowledged once they are on the local disk
(fsync'd), and written to the bucket right after, in the background.

Each API process appends records to its own segment file, group-committed: every upload that arrives while a
write is in progress goes into the next write, and one fsync covers them all, so a burst of uploads costs a
few fsyncs, not one each (and never waits for the object store). A record is the object key, the sha256 and
the bytes. Background tasks PUT each record (from memory) to the bucket, retrying until it is written; a
segment is deleted once every record in it is in the bucket. Draining gives way to acknowledging: while
uploads keep arriving (one less than QUIET_S ago) a record waits, at most MAX_DEFER_S, so that a burst's
acknowledgements do not share the CPU with its PUTs. A process holds an exclusive `flock` on its
segments, so when it dies (crash, kill -9, power loss) another process — or the next start — finds segments
nobody holds and writes their records to the bucket (a torn last record, never acknowledged, fails its
checksum and is skipped). A record written twice is harmless: the same bytes under the same key.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from docflow.api.s3put import S3Writer
from docflow.errors import DocflowError

log = logging.getLogger(__name__)

MAGIC = b"DFS1"
_HEADER = struct.Struct(">4sIQ")  # magic, meta length, data length
SWEEP_S = 30.0  # how often segments of dead processes are looked for
DRAINERS = 8  # concurrent PUTs per process
QUIET_S = 0.05  # draining waits until no upload arrived for this long...
MAX_DEFER_S = 1.0  # ...but never keeps a record from the bucket longer than this because of that


@dataclass(frozen=True)
class Record:
    key: str
    sha256: str
    data: bytes


@dataclass
class _Segment:
    path: Path
    fd: int
    outstanding: int = 0  # records appended but not yet in the bucket
    deleted: bool = False


@dataclass
class _Pending:
    record: Record
    done: asyncio.Future[_Segment] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def encode(record: Record) -> bytes:
    meta = json.dumps({"key": record.key, "sha256": record.sha256}).encode()
    return _HEADER.pack(MAGIC, len(meta), len(record.data)) + meta + record.data


def decode(blob: bytes) -> Iterator[Record]:
    """The complete, intact records of a segment; stops at a torn or corrupt one (never acknowledged)."""
    pos = 0
    while pos + _HEADER.size <= len(blob):
        magic, meta_len, data_len = _HEADER.unpack_from(blob, pos)
        end = pos + _HEADER.size + meta_len + data_len
        if magic != MAGIC or end > len(blob):
            return
        try:
            meta = json.loads(blob[pos + _HEADER.size : pos + _HEADER.size + meta_len])
        except ValueError:
            return
        data = blob[end - data_len : end]
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return
        yield Record(meta["key"], meta["sha256"], data)
        pos = end


class Spool:
    """Owned by one event loop (an API process); `start()` on that loop before `put()`."""

    def __init__(self, folder: Path, s3: S3Writer) -> None:
        self.folder = folder
        self.s3 = s3
        self._pending: list[_Pending] = []
        self._segment: _Segment | None = None
        self._queue: asyncio.Queue[tuple[Record, _Segment, float]] | None = None
        self._tasks: list[asyncio.Task] = []
        self._unwritten = 0  # records taken but not yet in the bucket
        self._wake: asyncio.Event | None = None
        self._last_put = 0.0  # loop time of the latest put()

    def start(self) -> None:
        if self._tasks:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._queue = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._flusher())]
        self._tasks += [asyncio.ensure_future(self._drainer()) for _ in range(DRAINERS)]
        self._tasks.append(asyncio.ensure_future(self._sweeper()))

    async def put(self, key: str, sha256: str, data: bytes) -> None:
        """Return once the record is durable on the local disk (it reaches the bucket shortly after)."""
        self.start()
        assert self._wake is not None
        pending = _Pending(Record(key, sha256, data))
        self._last_put = asyncio.get_running_loop().time()
        self._pending.append(pending)
        self._unwritten += 1
        self._wake.set()
        try:
            await asyncio.shield(pending.done)
        except DocflowError:
            self._unwritten -= 1
            raise

    @property
    def outstanding(self) -> int:
        """Records acknowledged but not yet in the bucket (this process)."""
        return self._unwritten

    # --- group commit --------------------------------------------------------------------------------------
    async def _flusher(self) -> None:
        assert self._wake is not None and self._queue is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            segment: _Segment | None = None
            try:
                segment = self._current()
                segment.outstanding += len(batch)
                blob = b"".join(encode(p.record) for p in batch)
                await asyncio.to_thread(_append, segment.fd, blob)
            except Exception as exc:  # a full or broken disk: refuse these uploads (nothing acknowledged)
                log.exception("upload spool write failed")
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(DocflowError(f"the upload spool failed: {exc}"))
                if segment is not None:  # it may end in a torn record: append nothing more to it
                    segment.outstanding -= len(batch)
                    if segment is self._segment:
                        self._segment = None
                    self._release(segment)
                continue
            now = asyncio.get_running_loop().time()
            for p in batch:
                self._queue.put_nowait((p.record, segment, now))
                if not p.done.done():
                    p.done.set_result(segment)

    def _current(self) -> _Segment:
        if self._segment is None:
            path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex}.spool"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # held while this process lives: a sweeper leaves it alone
            _fsync_dir(self.folder)
            self._segment = _Segment(path, fd)
        return self._segment

    def _release(self, segment: _Segment) -> None:
        """Delete a segment once every record in it is in the bucket (a new one is opened when needed)."""
        if segment.outstanding > 0 or segment.deleted:
            return
        if segment is self._segment:
            if self._pending:
                return  # the next group commit appends to it
            self._segment = None
        segment.deleted = True
        with contextlib.suppress(OSError):
            segment.path.unlink()
        os.close(segment.fd)

    # --- to the bucket -------------------------------------------------------------------------------------
    async def _drainer(self) -> None:
        assert self._queue is not None
        while True:
            record, segment, queued = await self._queue.get()
            await self._give_way(queued)
            await self._write(record)
            segment.outstanding -= 1
            self._unwritten -= 1
            self._release(segment)
            self._queue.task_done()

    async def _give_way(self, queued: float) -> None:
        """Wait while uploads are arriving (their acknowledgements come first), at most MAX_DEFER_S."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            quiet_at = self._last_put + QUIET_S
            if now >= quiet_at or now >= queued + MAX_DEFER_S:
                return
            await asyncio.sleep(min(quiet_at, queued + MAX_DEFER_S) - now)

    async def _write(self, record: Record) -> None:
        delay = 0.5
        while True:
            try:
                await self.s3.put(record.key, record.data, len(record.data), record.sha256)
                return
            except Exception:
                log.warning("spooled upload %s not written yet; retrying in %.0fs", record.key, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _sweeper(self) -> None:
        while True:
            try:
                await self.recover()
            except Exception:
                log.exception("upload spool sweep failed")
            await asyncio.sleep(SWEEP_S)

    async def recover(self) -> int:
        """Write the records of segments no live process holds (a crashed one's) to the bucket."""
        written = 0
        for path in sorted(self.folder.glob("*.spool")):
            fd = await asyncio.to_thread(_claim, path)
            if fd is None:
                continue
            try:
                blob = await asyncio.to_thread(path.read_bytes)
                for record in decode(blob):
                    await self._write(record)
                    written += 1
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if written:
            log.warning("upload spool: wrote %d records left by a stopped process", written)
        return written

    async def drain(self, timeout: float) -> bool:
        """Wait until every acknowledged record of this process is in the bucket (shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._unwritten:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def aclose(self, timeout: float = 20.0) -> None:
        if self._tasks and not await self.drain(timeout):
            log.warning("upload spool: %d records left for the next start", self.outstanding)
        for task in self._tasks:
            task.cancel()
        self._tasks = []


def _append(fd: int, blob: bytes) -> None:
    view = memoryview(blob)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _claim(path: Path) -> int | None:
    """An exclusive lock on a segment whose process is gone, else None (held, or already deleted)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if os.fstat(fd).st_nlink == 0:  # deleted by its owner between the listing and the lock
        os.close(fd)
        return None
    return fd
