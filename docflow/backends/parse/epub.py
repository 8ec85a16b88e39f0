"""EPUB: the package's spine (reading order) of XHTML chapters, each converted like HTML."""

import posixpath
import xml.etree.ElementTree as ET
from urllib.parse import unquote

from docflow.backends.parse.guard import Deadline, open_zip, read_member
from docflow.backends.parse.html import parse_html
from docflow.backends.parse.markdown import from_markdown
from docflow.errors import BadDocument
from docflow.models import ParsedDocument

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"


def _parse_xml(data: bytes, what: str) -> ET.Element:
    if b"<!ENTITY" in data[:4096]:
        raise BadDocument(f"the EPUB declares XML entities in {what} (refused)")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadDocument(f"the EPUB is corrupt ({what}: {exc})") from exc


def parse_epub(data: bytes, deadline: Deadline) -> ParsedDocument:
    with open_zip(data, "EPUB") as archive:
        container = _parse_xml(read_member(archive, "META-INF/container.xml", "EPUB"), "container.xml")
        rootfile = container.find(f".//{_CONTAINER}rootfile")
        if rootfile is None or not rootfile.get("full-path"):
            raise BadDocument("the EPUB has no package document (META-INF/container.xml)")
        opf_path = rootfile.get("full-path", "")
        opf = _parse_xml(read_member(archive, opf_path, "EPUB"), opf_path)
        base = posixpath.dirname(opf_path)
        manifest = {
            item.get("id"): item.get("href", "") for item in opf.iter(f"{_OPF}item") if item.get("id")
        }
        chapters: list[str] = []
        title = opf.find(".//{http://purl.org/dc/elements/1.1/}title")
        if title is not None and (title.text or "").strip():
            chapters.append(f"# {title.text.strip()}")
        for itemref in opf.iter(f"{_OPF}itemref"):
            href = manifest.get(itemref.get("idref"))
            if not href:
                continue
            deadline.check(f"chapter {href}")
            name = posixpath.normpath(posixpath.join(base, unquote(href)))
            chapters.append(parse_html(read_member(archive, name, "EPUB")).markdown.strip())
    if len(chapters) <= 1:
        raise BadDocument("the EPUB has no readable chapters")
    return from_markdown("\n\n".join(c for c in chapters if c) + "\n", parser="local/epub")
