"""E-mail: EML (RFC 5322, the standard library) and Outlook MSG (OLE streams via olefile).

The markdown holds the headers, the body (plain text preferred, else the HTML converted) and a list of
the attachments with their type and size; attachments themselves are not parsed here.
"""

import email
import email.policy
import io
from email.message import EmailMessage

from docflow.backends.parse.html import parse_html
from docflow.backends.parse.markdown import escape_line_starts, from_markdown, squash_blank_lines
from docflow.errors import BadDocument, MissingExtra
from docflow.models import ParsedDocument
from docflow.sniff import sniff_content_type

_HEADERS = ("From", "To", "Cc", "Date", "Subject")


def _compose(
    headers: dict[str, str], body_markdown: str, attachments: list[tuple[str, str, int]], parser: str
):
    subject = headers.get("Subject", "").strip()
    parts = [f"# {subject}"] if subject else []
    meta = [f"- **{name}:** {value}" for name, value in headers.items() if value and name != "Subject"]
    if meta:
        parts.append("\n".join(meta))
    if body_markdown.strip():
        parts.append(body_markdown.strip())
    if attachments:
        listed = "\n".join(f"- {name} ({mime}, {size:,} bytes)" for name, mime, size in attachments)
        parts.append(f"## Attachments\n\n{listed}")
    return from_markdown(squash_blank_lines("\n\n".join(parts)), parser=parser)


def _plain_body(text: str) -> str:
    return escape_line_starts(text.replace("\r\n", "\n"))


def parse_eml(data: bytes) -> ParsedDocument:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not any(message.get(h) for h in _HEADERS):
        raise BadDocument("the e-mail has no headers")
    headers = {name: str(message.get(name, "")) for name in _HEADERS}
    body = ""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        if part is not None:
            content = part.get_content()
            if part.get_content_subtype() == "html":
                body = parse_html(content.encode("utf-8")).markdown
            else:
                body = _plain_body(content)
    except (LookupError, ValueError) as exc:
        body = f"(the body could not be decoded: {exc})"
    attachments = []
    for attachment in message.iter_attachments():
        payload = attachment.get_payload(decode=True) or b""
        name = attachment.get_filename() or "(unnamed)"
        attachments.append((name, attachment.get_content_type(), len(payload)))
    return _compose(headers, body, attachments, "local/eml")


# --- MSG --------------------------------------------------------------------------------------------


def parse_msg(data: bytes) -> ParsedDocument:
    try:
        import olefile
    except ImportError as exc:  # pragma: no cover
        raise MissingExtra("olefile", "parse", "Outlook .msg e-mails") from exc
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except (OSError, ValueError) as exc:
        raise BadDocument(f"the MSG file is corrupt ({exc})") from exc
    with ole:
        prop = _msg_reader(ole)
        transport = prop("", "007D")
        headers = {
            "From": _from_line(prop("", "0C1A"), prop("", "5D01") or prop("", "0C1F")),
            "To": prop("", "0E04"),
            "Cc": prop("", "0E03"),
            "Date": _header(transport, "Date"),
            "Subject": prop("", "0037"),
        }
        body = prop("", "1000")
        if not body.strip() and (html := prop("", "1013", binary=True)):
            body = parse_html(html.encode("latin-1")).markdown
        else:
            body = _plain_body(body)
        attachments = []
        for storage in sorted({e[0] for e in ole.listdir() if e[0].startswith("__attach_version1.0_")}):
            name = prop(storage, "3707") or prop(storage, "3704") or "(unnamed)"
            payload = prop(storage, "3701", binary=True)
            mime = prop(storage, "370E") or sniff_content_type(payload.encode("latin-1"), name)
            attachments.append((name, mime, len(payload)))
    return _compose(headers, body, attachments, "local/msg")


def _msg_reader(ole):
    def prop(storage: str, tag: str, binary: bool = False) -> str:
        prefix = f"{storage}/" if storage else ""
        for suffix, codec in (("001F", "utf-16-le"), ("001E", "cp1252"), ("0102", "latin-1")):
            path = f"{prefix}__substg1.0_{tag}{suffix}"
            if ole.exists(path):
                raw = ole.openstream(path).read()
                codec = "latin-1" if binary else codec
                return raw.decode(codec, "replace").rstrip("\x00")
        return ""

    return prop


def _from_line(name: str, address: str) -> str:
    if name and address and address not in name:
        return f"{name} <{address}>"
    return name or address


def _header(transport: str, name: str) -> str:
    if not transport:
        return ""
    return str(email.message_from_string(transport, policy=email.policy.default).get(name, "") or "")
