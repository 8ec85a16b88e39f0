"""Contracts: title, parties, agreement/effective dates, expiration and governing-law clauses."""

import re
from datetime import date

from docflow.backends.extract.local.lines import Conf, Raw
from docflow.backends.extract.local.parties import COMPANY
from docflow.backends.extract.normalize import clean_text, find_dates, parse_date

_ABBREVIATIONS = set(
    [
        "inc",
        "ltd",
        "co",
        "corp",
        "no",
        "nos",
        "sec",
        "l.p",
        "u.s",
        "s.a",
        "mr",
        "ms",
        "mrs",
        "dr",
        "st",
        "e.g",
        "i.e",
        "art",
        "arts",
        "v",
        "vs",
        "n.a",
        "l.l.c",
        "b.v",
        "n.v",
        "p.c",
        "jr",
        "sr",
        "etc",
        "p",
        "pp",
        "para",
    ]
)
_SENTENCE_END = re.compile(
    r"(?<=[.!?])[\"”’)]?\s+(?=[A-Z0-9“\"(\[])|\s(?=(?:Section|SECTION|Article|ARTICLE)\s+[\dIVX]+(?:\.\d+)*\.?\s+[A-Z])"
)
_HEADING_PREFIX = re.compile(
    r"^(?:(?:section|article)\s+)?[\dIVX]+(?:\.\d+)*\.?\s+|^[A-Z][A-Z0-9;,&/'’\- ]{2,}?\s+(?=[A-Z][a-z])"
)
_DEFINED_GENERIC = {
    "party",
    "parties",
    "agreement",
    "effective date",
    "this agreement",
    "term",
    "initial term",
}


def sentences(text: str) -> list[str]:
    """Split running text into sentences, keeping abbreviations such as "Inc." and "L.P." inside.

    A bare section number ("8.", "14.2") is kept with the sentence after it, where `_clause` strips it.
    """
    flat = re.sub(r"\s+", " ", text.replace("\u00ad", "")).strip()
    pieces: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(flat):
        last_word = flat[start : m.start()].rsplit(" ", 1)[-1].rstrip(".").lower()
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
            continue
        pieces.append(flat[start : m.start()].strip())
        start = m.end()
    pieces.append(flat[start:].strip())
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        if re.fullmatch(r"(?:(?:section|article)\s+)?[\dIVX]+(?:\.\d+)*\.?", piece, re.I):
            carry += piece + " "
            continue
        merged.append(carry + piece)
        carry = ""
    return [p for p in merged if len(p) > 2]


def _clause(sentence: str) -> str:
    """A sentence as a clause: heading numbers/titles removed, straight quotes."""
    for _ in range(3):
        stripped = _HEADING_PREFIX.sub("", sentence, count=1)
        if stripped == sentence:
            break
        sentence = stripped
    return sentence.replace("“", '"').replace("”", '"').replace("’", "'").strip()


_EXPIRY_SIGNALS = [
    (r"\bterm of this agreement\b", 3),
    (r"\binitial term\b", 2),
    (r"\b(?:shall|will)\s+(?:expire|terminate)\s+(?:on|upon|at)\b", 3),
    (
        r"\b(?:shall|will)\s+(?:continue|remain)\s+"
        r"(?:(?:to\s+be\s+)?in\s+(?:full\s+)?(?:force|effect)|until|for|through)\b",
        2,
    ),
    (
        r"\b(?:this|the) agreement (?:shall|will) "
        r"(?:continue|remain|expire|terminate|commence|become effective|be valid)",
        2,
    ),
    (r"\bin perpetuity\b|\bperpetual\b", 2),
    (r"\b(?:shall|will)\s+(?:commence|become effective|be effective)\b", 1),
    (r"\b(?:years?|months?)\b", 1),
    (r"^[\"“][^\"”]{1,80}[\"”]\s+(?:means|shall mean)\b", -3),
    (r"\bgoverned by\b|\bnotice\b|\bupon (?:any )?(?:such )?termination\b|\bright to terminate\b", -3),
]
_LAW_SIGNALS = [
    (r"\bgoverned\s+(?:in all respects\s+)?by\b", 2),
    (r"\bconstrued\b|\binterpreted\b", 1),
    (r"\blaws?\s+of\b", 2),
    (r"\bin\s+accordance\s+with\s+the\s+(?:\w+\s+)?laws?\b", 1),
    (r"\bjurisdiction\b|\bvenue\b|\barbitration\b", -1),
]
_DATED = re.compile(
    r"\b(?:dated|made\s+and\s+entered\s+into|entered\s+into|made|executed|concluded|signed|effective)\b"
    r"(?:\s+(?:as\s+of|on|this|the|at|and))*\s*",
    re.I,
)
_EFFECTIVE = re.compile(
    r"\beffective\s+(?:as\s+of|on|from)\s+|[\"“]effective\s+date[\"”]\s*(?:means|shall\s+mean)\s+", re.I
)
_BETWEEN = re.compile(r"\b(?:by\s+and\s+)?(?:between|among)\b", re.I)
_PREAMBLE_END = re.compile(r"\bWHEREAS\b|\bWITNESSETH\b|\bRECITALS?\b|\bNOW,?\s+THEREFORE\b|\bBACKGROUND\b")
_PARTY_SPLIT = re.compile(r"(?<=\)),\s*(?:and\s+)?(?=[A-Z])|,?\s+and\s+(?=[A-Z“\"])|;\s*(?:and\s+)?")
_NAME_END = re.compile(
    r"\s*\(|,\s+(?=[a-z])|\s+located\b|\s+having\b|\s+with\s+(?:its|offices)\b|\s+on\s+behalf\b"
)
_ALIAS = re.compile(
    r"\([^()]*?[\"“]([^\"”]{1,60})[\"”]|(?:referred\s+to\s+(?:herein\s+)?as|hereinafter)\s+(?:the\s+)?[\"“]([^\"”]{1,60})[\"”]",
    re.I,
)


def extract_contract(text: str) -> tuple[Raw, Conf]:
    raw: Raw = {}
    conf: Conf = {}
    head = re.sub(r"\s+", " ", text[:6000])
    sents = sentences(text[:400_000])

    title = _title(text)
    if title:
        raw["title"], conf["title"] = title, 0.7
    parties = _parties(head)
    if parties:
        raw["parties"], conf["parties"] = parties, 0.7
    cut = _PREAMBLE_END.search(head[:3000])
    preamble = head[: cut.start()] if cut else head[:3000]  # recitals cite other agreements' dates
    as_of = _as_of_phrase(preamble)  # "made as of the date of the Closing": a date in words, kept as text
    agreement = _date_after(_DATED, preamble) or (None if as_of else _date_after(_DATED, head[:3000]))
    if agreement:
        raw["agreement_date"], conf["agreement_date"] = agreement, 0.8
    elif as_of:
        raw["agreement_date"], conf["agreement_date"] = as_of, 0.5
    elif (first := parse_date(head[:2000])) is not None:
        raw["agreement_date"], conf["agreement_date"] = first, 0.4
    effective = _date_after(_EFFECTIVE, head) or _date_before_effective_date(head)
    if not effective and as_of and _EFFECTIVE_AS_OF.search(head[:3000]):
        effective = as_of
    if effective:
        raw["effective_date"], conf["effective_date"] = effective, 0.8
    elif "agreement_date" in raw:  # absent a stated effective date, an agreement takes effect on its date
        raw["effective_date"], conf["effective_date"] = raw["agreement_date"], 0.4
    expiry = _best_sentence(sents, _EXPIRY_SIGNALS, minimum=4)
    if expiry:
        raw["expiration_date"], conf["expiration_date"] = expiry, 0.6
    law = _best_sentence(sents, _LAW_SIGNALS, minimum=4)
    if law:
        raw["governing_law"], conf["governing_law"] = law, 0.8
    return raw, conf


def _title(text: str) -> str | None:
    """An upper-case heading naming an agreement/contract among the first lines."""
    for line in text.splitlines()[:15]:
        line = line.strip()
        if line.isupper() and len(line.split()) <= 10 and re.search(r"\bAGREEMENT\b|\bCONTRACT\b", line):
            return line
    return None


_AS_OF = re.compile(
    r"\b(?:dated|made|entered\s+into|effective|executed)\b[^.;]{0,40}?\bas\s+of\s+"
    r"(?P<phrase>[^()“”\"\n.;]{3,80}?)\s*(?=\(|,?\s+(?:by\s+and\s+)?(?:between|among)\b|[.;])",
    re.I,
)
_DATE_WORDS = re.compile(r"\b(?:date|day|closing|execution|signing|commencement|(?:19|20)\d\d)\b", re.I)
_EFFECTIVE_AS_OF = re.compile(r"\beffective\s+as\s+of\b|\([^()]*[\"“]effective\s+date[\"”]\)", re.I)


def _as_of_phrase(text: str) -> str | None:
    """The words after "as of" in the preamble when they are not a date ("the date of the Closing")."""
    m = _AS_OF.search(text)
    if not m or find_dates(m.group("phrase")) or not _DATE_WORDS.search(m.group("phrase")):
        return None
    return clean_text(m.group("phrase").strip(" ,"))


def _date_after(pattern: re.Pattern[str], text: str) -> date | None:
    for m in pattern.finditer(text):
        found = find_dates(text[m.end() : m.end() + 60])
        if found and found[0][1] < 15:
            return found[0][0]
    return None


def _date_before_effective_date(text: str) -> date | None:
    m = re.search(r"\((?:the\s+)?[\"“]effective\s+date[\"”]\)", text, re.I)
    if not m:
        return None
    found = find_dates(text[max(0, m.start() - 60) : m.start()])
    return found[-1][0] if found else None


# what a preamble says before its parties ("This Agreement, dated as of ..., among"), which a cover page's
# "AGREEMENT among A, as Issuer, B, as Depositor" lacks
_PREAMBLE_CUE = re.compile(
    r"\b(?:this|the)\s+(?:[\w-]+\s+){0,6}?agreement\b|\bdated\b|\b(?:made|entered)\s+into\b", re.I
)


def _parties(head: str) -> list[str]:
    matches = list(_BETWEEN.finditer(head))
    if not matches:
        return []
    recitals = _PREAMBLE_END.search(head)  # a "between" in the recitals names other agreements' parties
    before = [b for b in matches[:4] if not recitals or b.start() < recitals.start()]
    m = next(
        (b for b in before if _PREAMBLE_CUE.search(head[max(0, b.start() - 300) : b.start()])), matches[0]
    )
    segment = head[m.end() : m.end() + 1200]
    end = _PREAMBLE_END.search(segment)
    segment = sentences(segment[: end.start()] if end else segment)[0] if segment.strip() else ""
    names: list[str] = []
    for part in _PARTY_SPLIT.split(segment):
        part = part.strip(" ,.")
        company = COMPANY.match(part)
        name = clean_text(company.group("name") if company else _NAME_END.split(part, maxsplit=1)[0])
        if name and name[0].isupper() and len(name.split()) <= 12:
            names.append(name)
        for alias in _ALIAS.findall(part):
            alias_text = clean_text(alias[0] or alias[1])
            if (
                alias_text
                and alias_text.lower() not in _DEFINED_GENERIC
                and not alias_text.lower().endswith("date")
            ):
                names.append(alias_text)
    return list(dict.fromkeys(names))


def _best_sentence(sents: list[str], signals: list[tuple[str, int]], minimum: int) -> str | None:
    best, best_score = None, minimum - 1
    for sentence in sents:
        if len(sentence) > 900:
            continue
        score = sum(weight for pattern, weight in signals if re.search(pattern, sentence, re.I))
        if score > best_score:
            best, best_score = sentence, score
    return _clause(best) if best else None
