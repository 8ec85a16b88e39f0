"""A corpus of bad inputs, made on the fly (nothing stored): the reliability tests and `docflow bench --soak`
upload these next to good documents and check that each fails on its own with a clear reason.

`bad_inputs(nonce)` returns `BadInput`s: a kind, a file name, the bytes and the words the document's error
must contain (`expect`), or `expect=None` for odd inputs that must still be processed (`done`). Every file
carries the nonce so each call makes new documents (new bytes, new document ids)."""

import base64
import codecs
import functools
import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class BadInput:
    kind: str
    name: str  # file name (last key segment); may be hostile (control characters, `..`, very long)
    data: bytes
    expect: tuple[str, ...] | None  # words (lower-case) the error must contain; None = must be processed


def _pdf(pages: int, text: str = "") -> bytes:
    """A valid PDF of `pages` empty pages, written directly (10,000 pages in ~50 ms, ~0.7 MB)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for i in range(pages):
        kids.append(f"{i + 4} 0 R".encode())
    objects[1] = b"<< /Type /Pages /Count %d /Kids [%s] >>" % (pages, b" ".join(kids))
    objects.append(b"<< /Subject (%s) >>" % text.encode())
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"] * pages
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info 3 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _text_pdf(text: str) -> bytes:
    """A one-page PDF with a real text layer (pypdfium2 can write text, pypdf cannot)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as c

    doc = pdfium.PdfDocument.new()
    page = doc.new_page(300, 200)
    font = c.FPDFText_LoadStandardFont(doc, b"Helvetica")
    obj = c.FPDFPageObj_NewTextObj(doc, b"Helvetica", 12.0)
    encoded = (text + "\0").encode("utf-16-le")
    buffer = (c.c_ushort * (len(encoded) // 2)).from_buffer_copy(encoded)
    c.FPDFText_SetText(obj, buffer)
    c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 20, 100)
    c.FPDFPage_InsertObject(page, obj)
    c.FPDFPage_GenerateContent(page)
    c.FPDFFont_Close(font)
    out = io.BytesIO()
    doc.save(out)
    page.close()
    doc.close()
    return out.getvalue()


def _encrypted_pdf(nonce: str, user: str, owner: str, algorithm: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_text_pdf(f"Confidential memo {nonce}"))))
    writer.encrypt(user_password=user, owner_password=owner, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _zip_bomb(nonce: str, kind: str) -> bytes:
    """An OOXML package whose main part deflates from ~64 KiB to 64 MiB (ratio ~1000:1), unique by its
    zip comment (the deflating is done once per kind)."""
    out = io.BytesIO(_bomb(kind))
    with zipfile.ZipFile(out, "a") as archive:
        archive.comment = nonce.encode()
    return out.getvalue()


@functools.cache
def _bomb(kind: str) -> bytes:
    part = "word/document.xml" if kind == "docx" else "xl/worksheets/sheet1.xml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open(part, "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(64):
                member.write(block)
    return out.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with one tiny (invalid) data chunk."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def _deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def bad_inputs(nonce: str, seed: int = 0) -> list[BadInput]:
    """At least 20 kinds of bad input; every file's bytes include `nonce`."""
    rng = random.Random(seed)
    tag = nonce.encode()
    letter = f"Dear customer, your order {nonce} has shipped. Kind regards, the shop.\n".encode()
    pdf = _text_pdf(f"Invoice {nonce} total 10.00")
    ten_thousand = _pdf(10_000, nonce)
    return [
        BadInput("empty", f"empty-{nonce}.txt", b"", ("empty",)),
        # an empty file is always the same bytes; the nonce makes the 0-byte file unique per call only
        # through its key, so it is one document per tenant
        BadInput("truncated_pdf", f"truncated-{nonce}.pdf", pdf[: len(pdf) // 3], ("pdf",)),
        BadInput("corrupt_pdf", f"corrupt-{nonce}.pdf", b"%PDF-1.7\n" + rng.randbytes(4000) + tag, ("pdf",)),
        BadInput(
            "encrypted_pdf_aes256",
            f"secret-aes-{nonce}.pdf",
            _encrypted_pdf(nonce, "secret", "owner", "AES-256"),
            ("encrypted", "password"),
        ),
        BadInput(
            "encrypted_pdf_rc4",
            f"secret-rc4-{nonce}.pdf",
            _encrypted_pdf(nonce, "letmein", "owner2", "RC4-128"),
            ("encrypted", "password"),
        ),
        BadInput("pdf_10000_pages", f"huge-{nonce}.pdf", ten_thousand, ("10000 pages", "limit")),
        BadInput("zip_bomb_docx", f"bomb-{nonce}.docx", _zip_bomb(nonce, "docx"), ("zip bomb",)),
        BadInput("zip_bomb_xlsx", f"bomb-{nonce}.xlsx", _zip_bomb(nonce, "xlsx"), ("zip bomb",)),
        BadInput(
            "corrupt_docx", f"broken-{nonce}.docx", b"PK\x03\x04" + rng.randbytes(2000) + tag, ("corrupt",)
        ),
        BadInput(
            "zip_named_docx",
            f"archive-{nonce}.docx",
            _plain_zip(nonce),
            ("application/zip",),
        ),
        BadInput(
            "binary_garbage", f"garbage-{nonce}.bin", rng.randbytes(8000) + b"\0" + tag, ("octet-stream",)
        ),
        BadInput("nul_bytes", f"zeros-{nonce}.txt", b"\0" * 5000 + tag, ("octet-stream",)),
        BadInput("whitespace_only", f"blank-{nonce}.txt", _whitespace(tag), ("no text", "whitespace")),
        BadInput(
            "utf16_garbage",
            f"noise-{nonce}.txt",
            codecs.BOM_UTF16_LE + rng.randbytes(4000) + tag,
            ("not readable as text", "encoding"),
        ),
        BadInput("gzip", f"logs-{nonce}.txt.gz", _gzip(tag), ("gzip",)),
        BadInput("image_20000px", f"poster-{nonce}.png", _png_header(20_000, 20_000), ("image", "pixels")),
        BadInput(
            "corrupt_png", f"photo-{nonce}.png", b"\x89PNG\r\n\x1a\n" + tag + rng.randbytes(300), ("image",)
        ),
        BadInput("deep_json", f"nested-{nonce}.json", _deep_json(200_000) + b" " + tag, ("nested",)),
        BadInput(
            "corrupt_xls",
            f"ledger-{nonce}.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rng.randbytes(3000) + tag,
            ("xls",),
        ),
        BadInput("control_chars_name", f"in\x01voice\x1b[31m\t{nonce}.txt", letter + b"1", ("unsafe",)),
        BadInput("dotdot_name", f"../../etc/{nonce}-passwd.txt", letter + b"2", ("unsafe",)),
        BadInput("long_name", f"{'n' * 1000}-{nonce}.txt"[-1000:], letter + b"3", ("unsafe", "long")),
        # odd but readable: processed by content, not by name
        BadInput("wrong_extension", f"letter-{nonce}.pdf", letter + b"4", None),
        BadInput("invalid_utf8", f"latin1-{nonce}.txt", letter + "Grüße, café ½\n".encode("cp1252"), None),
        BadInput(
            "utf16_text", f"utf16-{nonce}.txt", (letter.decode() + "Grüße, 東京\n").encode("utf-16"), None
        ),
        BadInput(
            "huge_single_line",
            f"oneline-{nonce}.txt",
            base64.b64encode(rng.randbytes(96 * 1024)) + tag,  # 128 KiB, not one space or newline
            None,
        ),
        BadInput(
            "owner_password_pdf",
            f"restricted-{nonce}.pdf",
            _encrypted_pdf(nonce, "", "owner-only", "AES-128"),
            None,
        ),
    ]


def _plain_zip(nonce: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", f"not an office document {nonce}")
    return out.getvalue()


def _whitespace(data: bytes) -> bytes:
    """Spaces and tabs only, spelling `data` in binary (so each nonce still makes its own document)."""
    return "".join(f"{byte:08b}" for byte in data).translate({48: " ", 49: "\t"}).encode() + b"\r\n"


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data * 100)
