"""Limits that protect a worker from one bad document: a parse deadline and zip-bomb checks."""

import io
import time
import zipfile

from docflow.errors import BadDocument, DocumentTooLarge

MAX_UNZIPPED_BYTES = 512 * 1024 * 1024  # total declared uncompressed size of an Office/ODF/EPUB package
MAX_ZIP_RATIO = 200  # uncompressed / compressed, beyond which a big package is a zip bomb
_RATIO_FLOOR = 32 * 1024 * 1024  # small packages may compress as well as they like


class Deadline:
    """A per-document time budget, checked between pages, slides, sheets and parts."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds if seconds else None

    def check(self, where: str = "") -> None:
        if self.end is not None and time.monotonic() > self.end:
            at = f" (at {where})" if where else ""
            raise DocumentTooLarge(f"parsing took longer than the limit of {self.seconds:g} s{at}")

    def remaining(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - time.monotonic())


def open_zip(data: bytes, what: str) -> zipfile.ZipFile:
    """Open an Office/ODF/EPUB package; a corrupt archive or a zip bomb raises a `BadDocument`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BadDocument(f"the {what} file is corrupt (not a readable zip package: {exc})") from exc
    if any(info.flag_bits & 0x1 for info in infos):
        raise BadDocument(f"the {what} file is encrypted")
    total = sum(info.file_size for info in infos)
    compressed = max(1, sum(info.compress_size for info in infos))
    if total > MAX_UNZIPPED_BYTES or (total > _RATIO_FLOOR and total / compressed > MAX_ZIP_RATIO):
        raise DocumentTooLarge(
            f"the {what} file looks like a zip bomb: {len(data):,} bytes unpack to {total:,} bytes "
            f"(ratio {total / compressed:,.0f}:1; limits {MAX_UNZIPPED_BYTES:,} bytes, {MAX_ZIP_RATIO}:1)"
        )
    return archive


def read_member(archive: zipfile.ZipFile, name: str, what: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError as exc:
        raise BadDocument(f"the {what} file has no {name} part") from exc
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BadDocument(f"the {what} file is corrupt ({name}: {exc})") from exc
