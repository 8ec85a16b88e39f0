"""Resumes: name, e-mail, phone, skills."""

import re

from docflow.backends.extract.local.lines import Conf, Lines, Raw, first_value, label_pattern
from docflow.backends.extract.normalize import clean_text

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w])(\(?\+?\(?\d[\d\s().\-]{6,}\d)")
_PHONE_LABEL = label_pattern(
    r"tel", r"phone", r"mobile", r"cell", r"telephone", r"t[ée]l[ée]?phone", r"telefon", r"handy"
)
_NAME_CUT = re.compile(
    r"\s{2,}|\s[|·•]\s|\b(?:e-?mail|phone|mobile|tel|cell|address|linkedin|github)\b|@|\d", re.I
)
_SECTION = re.compile(
    r"^(?:technical\s+|programming\s+|core\s+|key\s+)?"
    r"(?:skills|experience|work experience|employment|education|projects|publications|honors|awards|"
    r"summary|profile|certifications?|certificates|languages|interests|"
    r"activities|extracurricular|presentations|writing|references|volunteer(?:ing)?|leadership)(?:\s*&.*)?:?$",
    re.I,
)


def extract_resume(text: str) -> tuple[Raw, Conf]:
    lines = Lines(text)
    raw: Raw = {}
    conf: Conf = {}
    for line in lines.lines[:5]:
        name = _NAME_CUT.split(line, maxsplit=1)[0].strip(" ,")
        if 2 <= len(name.split()) <= 5 and all(w[0].isupper() for w in name.split() if w[0].isalpha()):
            raw["name"], conf["name"] = clean_text(name), 0.8
            break
    if m := _EMAIL.search(text):
        raw["email"], conf["email"] = m.group(), 0.95
    phone = first_value(lines.labelled(_PHONE_LABEL), _phone) or first_value(
        ((ln, 0.6) for ln in lines.lines[:30]), _phone
    )
    if phone:
        raw["phone"], conf["phone"] = phone
    skills = _skills(lines.lines)
    if skills:
        raw["skills"], conf["skills"] = skills, 0.6
    return raw, conf


def _phone(text: str) -> str | None:
    for m in _PHONE.finditer(text):
        candidate = m.group(1).strip(" .-")
        digits = sum(c.isdigit() for c in candidate)
        if 8 <= digits <= 15 and not re.fullmatch(r"(?:19|20)\d{2}\s*[-–]\s*(?:19|20)\d{2}", candidate):
            return candidate
    return None


def _skills(lines: list[str]) -> list[str]:
    skills: list[str] = []
    for i, line in enumerate(lines):
        if not (_SECTION.match(line) and "skill" in line.lower()):
            continue
        for nxt in lines[i + 1 : i + 16]:
            if _SECTION.match(nxt):
                break
            body = nxt.split(":", 1)[-1]
            for item in re.split(r"[,;•·]|\s{2,}", body):
                item = clean_text(item)
                if item and len(item.split()) <= 4:
                    skills.append(item)
        break
    return list(dict.fromkeys(skills))[:50]


# ======================================================================================================
