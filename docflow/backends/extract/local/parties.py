"""Names of parties: legal-entity names, and the issuer (vendor/store) of an invoice or a receipt."""

import re

from docflow.backends.extract.local.lines import Lines, first_value, label_pattern
from docflow.backends.extract.normalize import clean_text

LEGAL = (
    r"(?:Inc|Incorporated|INC|Ltd|LTD|Limited|LIMITED|LLC|L\.L\.C|LLP|LP|L\.P|PLC|plc|"
    r"GmbH(?:\s*&\s*Co\.?\s*KG(?:aA)?)?|AG|KG|SE|B\.\s?V|BV|N\.\s?V|NV|S\.A\.S|SAS|S\.\s?A|SA|SARL|S\.?à\s?r\.?l|"
    r"S\.r\.l|Srl|S\.p\.A|SpA|Sp\.\s?z\s?o\.\s?o|sp\.\s?z\s?o\.\s?o|Oy|AB|AS|A/S|ApS|Pty(?:\s+Ltd)?|"
    r"Pvt\.?\s+Ltd|Private\s+Limited|Corp|Corporation|CORPORATION|Co|Company|COMPANY|S\.L|SL|K\.K|"
    r"Sdn\.?\s*Bhd|SDN\.?\s*BHD|Bhd|BHD|Berhad|BERHAD|S/B|Pte\.?\s*Ltd|PTE\.?\s*LTD)\.?"
)
# "AEON CO. (M) BHD.": a short country/branch mark in parentheses may sit between legal words
COMPANY = re.compile(
    rf"^(?P<name>[A-Z0-9][^:@]{{0,60}}?[\s,]+{LEGAL}(?:[\s,]+(?:\([A-Z]{{1,3}}\)\s*)?{LEGAL})*)(?=$|[\s,;.()])"
)
SEGMENT_CUT = re.compile(r"\s+[–—•|·]\s+|\s{2,}|\t| - ")
_VENDOR_LABEL = label_pattern(
    r"seller",
    r"vendor",
    r"supplier",
    r"service\s+provider",
    r"provided\s+by",
    r"issued\s+by",
    r"sold\s+by",
    r"bill\s+from",
    r"from:",
    r"sprzedawca",
    r"verk[äa]ufer",
    r"lieferant",
    r"vendeur",
    r"fournisseur",
    r"leverancier",
    r"proveedor",
    r"fornitore",
)
_BUYER_LABEL = label_pattern(
    r"bill(?:ed)?\s+to",
    r"invoice\s+to",
    r"sold\s+to",
    r"ship(?:ped)?\s+to",
    r"deliver(?:ed)?\s+to",
    r"customer",
    r"client",
    r"buyer",
    r"nabywca",
    r"rechnungsempf[äa]nger",
    r"destinataire",
    r"factur[ée]\s+[àa]",
    r"factureren\s+aan",
    r"cliente",
)
_ACCOUNT_HOLDER = label_pattern(
    r"titulaire\s+du\s+compte", r"account\s+holder", r"account\s+name", r"beneficiary", r"kontoinhaber"
)
# "Make all cheques payable to X", "All payment to be made in favour of X": the payee is the issuer
_PAYEE = label_pattern(
    r"payable\s+to",
    r"in\s+favou?r\s+of",
    r"remit(?:\s+payments?)?\s+to",
    r"zahlbar\s+an",
    r"[àa]\s+l'ordre\s+de",
)
# the fine print that states the registered entity: share capital, trade register, registered office
_LEGAL_NOTICE = re.compile(
    r"\bau\s+capital\s+(?:social\s+)?de\b|\bcapital\s+social\b|\bshare\s+capital\b|\bRCS\b|"
    r"\bregistered\s+(?:office|address|in\s+\w+|number|no\b)|\bcompany\s+(?:registration\s+)?(?:no\b|number)|"
    r"\bsi[èe]ge\s+social\b|\bHR[AB]\s*\d|\b(?:Amts|Register)gericht\b|\bHandelsregister\b|\bStammkapital\b|"
    r"\bGesch[äa]ftsf[üu]hr(?:er|ung)\b|\bKRS\b|\bkapita[łl]\s+zak[łl]adowy\b|\bKvK\b|\bregistro\s+mercantil\b",
    re.I,
)
_TITLE_LINE = re.compile(
    r"^(?:tax\s+)?(?:invoice|facture|factuur|rechnung|faktura|factura|fattura|receipt|payment\s+receipt|"
    r"quittung|bill|statement|credit\s+note)\b",
    re.I,
)


_TITLE_FROM = re.compile(
    r"\b(?:invoice|receipt|bill|statement)(?:\s+from\s+|\s*[:–—]\s*|\s{2,})(?P<name>[A-Z0-9][^\n]{1,60})$",
    re.I,
)
_NOT_A_NAME = re.compile(
    r"^(?:number|no\.?|nr\.?|num|date|id|total|amount|details|summary|to|for|of|page|period|copy|original)\b",
    re.I,
)
_EMAIL_HOST = re.compile(r"[\w.+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_WEB_HOST = re.compile(r"(?:https?://|(?<![\w.@])www\.)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)", re.I)
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc"}
# mailbox providers and placeholders say nothing about who sent a document
_GENERIC_HOSTS = {
    "gmail", "googlemail", "yahoo", "hotmail", "outlook", "live", "msn", "icloud", "aol", "gmx", "web",
    "mail", "email", "example", "proton", "protonmail", "yandex", "qq", "163", "fake", "test", "orange",
}  # fmt: skip
# "Powered by TCPDF (www.tcpdf.org)": the domain of the software that made the document, not of its issuer
_TOOL_CREDIT = re.compile(
    r"\b(?:powered|generated|created|produced|made|printed|sent|built|hosted)\s+(?:by|with|using|via|on)\b|"
    r"\bprint-?out\b",
    re.I,
)
_CONTACT = re.compile(r"\S+@\S+|(?:https?://|www\.)\S+", re.I)
_TOKEN = re.compile(r"[^\s,;:()|]+")
_URLISH = re.compile(r"[@/]|^www\.|\.[a-z]{2,}$", re.I)


def find_vendor(lines: Lines) -> tuple[str, float] | None:
    """The issuer of an invoice or receipt, from the strongest cue found:

    1. a labelled seller block ("Seller:", "Bill from", "From:", "Provided by"...), 0.9;
    2. a title naming it ("Invoice from X", "Receipt | X"), 0.8;
    3. a legal-entity name (Inc, LLC, GmbH, Ltd, Sdn Bhd...) outside the buyer's block and the fine print,
       preferring one that matches a web or e-mail domain of the document (the seller's own site), 0.75-0.8;
    4. words matching such a domain ("Azure Interior" for azure-interior.com), 0.7;
    5. a legal-entity name of the fine print ("Acme SAS au capital de...", "Registered office"), 0.7-0.75:
       when the document goes by another name (4.), that one is the name its reader knows it by;
    6. the payee ("cheques payable to X", "in favour of X"), 0.65; 7. the account holder of the bank
       details, 0.6; 8. a name-like line at the top (without its e-mail address), 0.3.

    The buyer's block is the paragraph after "Bill to", "Customer"...; domains seen there are the buyer's.
    """
    buyer = _buyer_lines(lines)
    domains = _domains(lines, buyer)
    for i, line in enumerate(lines.lines):
        m = _VENDOR_LABEL.search(line)
        if not m or _BUYER_LABEL.search(line):
            continue
        rest = line[m.end() :].strip(" :")
        following = [rest] if rest else [lines.lines[j] for j in lines.block_after(i, limit=3)]
        for candidate in following:
            name = company_name(candidate) or _domain_name(candidate, domains) or _leading_name(candidate)
            if name:
                return name, 0.9
    for line in lines.lines[:6]:
        m = _TITLE_FROM.search(line)
        if m and not _NOT_A_NAME.match(m.group("name")):
            name = company_name(m.group("name")) or plain_name(m.group("name"))
            if name:
                return name, 0.8
    fine_print = {i for i, line in enumerate(lines.lines) if _LEGAL_NOTICE.search(line)}
    companies = [
        name
        for i, line in enumerate(lines.lines)
        if i not in buyer and i not in fine_print and (name := company_name(line))
    ]
    for name in companies:
        if spelled := _domain_name(name, domains):  # "Thanks for choosing Acme Ltd" -> "Acme Ltd"
            return spelled, 0.8
    if companies:
        return companies[0], 0.75
    for i, line in enumerate(lines.lines):
        if i not in buyer and i not in fine_print and (name := _domain_name(line, domains)):
            return name, 0.7  # the name the document goes by, not the registered one of its fine print
    registered = [name for i in sorted(fine_print - buyer) if (name := company_name(lines.lines[i]))]
    for name in registered:
        if spelled := _domain_name(name, domains):
            return spelled, 0.75
    if registered:
        return registered[0], 0.7
    payee = first_value(lines.labelled(_PAYEE), company_name)
    if payee:
        return payee[0], 0.65
    holder = first_value(lines.labelled(_ACCOUNT_HOLDER), plain_name)
    if holder:
        return holder[0], 0.6
    for line in lines.lines[:4]:
        if not _TITLE_LINE.match(line) and (name := plain_name(line)) and len(name.split()) <= 4:
            return name, 0.3
    return None


def _buyer_lines(lines: Lines) -> set[int]:
    buyer: set[int] = set()
    for i, line in enumerate(lines.lines):
        if _BUYER_LABEL.search(line) and len(line.split()) <= 6:
            buyer.add(i)
            buyer.update(lines.block_after(i))
    return buyer


def _host_label(host: str) -> str | None:
    """The name part of a host: "azure-interior" for www.azure-interior.com, "acme" for mail.acme.co.uk."""
    parts = host.lower().strip(".").split(".")
    if len(parts) < 2:
        return None
    label = parts[-3] if len(parts) >= 3 and parts[-2] in _SECOND_LEVEL and len(parts[-1]) == 2 else parts[-2]
    label = re.sub(r"[^a-z0-9]", "", label)
    return label if len(label) >= 3 and label not in _GENERIC_HOSTS else None


def _domains(lines: Lines, buyer: set[int]) -> list[str]:
    """Name parts of the web and e-mail domains of the document, in order, without the buyer's."""
    found: dict[str, bool] = {}
    for i, line in enumerate(lines.lines):
        if _TOOL_CREDIT.search(line):
            continue
        for m in [*_EMAIL_HOST.finditer(line), *_WEB_HOST.finditer(line)]:
            if label := _host_label(m.group(1)):
                found[label] = found.get(label, False) or i in buyer
    for i in buyer:  # a domain whose name is written in the buyer's block is the buyer's
        for label in found:
            if _span_for(lines.lines[i], label):
                found[label] = True
    return [label for label, is_buyer in found.items() if not is_buyer]


def _span_for(line: str, label: str) -> tuple[int, int] | None:
    """Where capitalised words of `line` spell the domain name `label` (or its first half at least)."""
    tokens = [m for m in _TOKEN.finditer(line) if not _URLISH.search(m.group())]
    for a, first_token in enumerate(tokens):
        if not (first_token.group()[0].isupper() or first_token.group()[0].isdigit()):
            continue
        spelled, end = "", None
        for token in tokens[a : a + 5]:
            spelled += re.sub(r"[^a-z0-9]", "", token.group().lower())
            if not spelled or not label.startswith(spelled):
                break
            if spelled == label or len(spelled) >= max(4, (len(label) + 1) // 2):
                end = token.end()
            if spelled == label:
                break
        if end is not None:
            return first_token.start(), end
    return None


def _domain_name(line: str, domains: list[str]) -> str | None:
    """The name in `line` that spells one of `domains`, extended to its legal-entity form when written."""
    for label in domains:
        span = _span_for(line, label)
        if span:
            start, end = span
            return company_name(line[start:]) or clean_text(line[start:end].strip(" .,-"))
    return None


def _leading_name(line: str) -> str | None:
    """The words of a line before its first number ("Acme Tools 12 Main St" -> "Acme Tools")."""
    head = re.split(r"\s\d|,", line, maxsplit=1)[0]
    return plain_name(head)


def company_name(line: str) -> str | None:
    for segment in SEGMENT_CUT.split(line.strip()):
        m = COMPANY.match(segment.strip())
        if m and len(m.group("name").split()) <= 8:
            return clean_text(m.group("name"))
    return None


def plain_name(line: str) -> str | None:
    """A line that reads like a name: starts with a letter, no parentheses, not a sentence."""
    line = _CONTACT.sub(" ", line).strip(" ,;|")  # "Jane Roe jane@roe.dev" -> "Jane Roe"
    segment = SEGMENT_CUT.split(line)[0]
    if not segment or not segment[0].isalpha() or segment.startswith("(") or "@" in segment:
        return None
    if len(segment.split()) > 6 or ":" in segment or sum(c.isdigit() for c in segment) > 2:
        return None
    return clean_text(segment)
