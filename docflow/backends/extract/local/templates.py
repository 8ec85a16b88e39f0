"""Declarative per-issuer templates (invoice2data-like): issuer keywords + one regex per field."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from docflow.backends.extract.local.lines import Conf, Raw
from docflow.backends.extract.normalize import (
    clean_text,
    parse_amount,
    parse_currency,
    parse_date,
    parse_percent,
)
from docflow.errors import ConfigError


@dataclass
class Template:
    name: str
    keywords: list[str]
    fields: dict[str, str]
    issuer: str | None = None
    doc_types: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def matches(self, text: str, doc_type: str) -> bool:
        if self.doc_types and doc_type not in self.doc_types:
            return False
        return all(re.search(k, text, re.I | re.M) for k in self.keywords)


def load_templates(folder: Path) -> list[Template]:
    """Every `*.yaml`/`*.yml` template in `folder` (sorted by file name); a broken one raises ConfigError."""
    templates = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []:
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for regex in [*spec.get("keywords", []), *spec.get("fields", {}).values()]:
                re.compile(regex)
            templates.append(
                Template(
                    name=path.stem,
                    keywords=list(spec["keywords"]),
                    fields=dict(spec.get("fields", {})),
                    issuer=spec.get("issuer"),
                    doc_types=list(spec.get("doc_types", [])),
                    options=dict(spec.get("options", {})),
                )
            )
        except (KeyError, TypeError, yaml.YAMLError, re.error) as exc:
            raise ConfigError(f"bad extraction template {path}: {exc}") from exc
    return templates


_AMOUNT_FIELDS = {"total_amount", "tax_amount", "total"}
_DATE_FIELDS = {"invoice_date", "due_date", "date", "agreement_date", "effective_date"}


def apply_template(template: Template, text: str, doc_type: str) -> tuple[Raw, Conf]:
    raw: Raw = {}
    day_first = bool(template.options.get("day_first", True))
    if template.issuer:
        raw["store_name" if doc_type == "receipt" else "vendor_name"] = template.issuer
    if template.options.get("currency"):
        raw["currency"] = template.options["currency"]
    for name, regex in template.fields.items():
        m = re.search(regex, text, re.I | re.M)
        if m:
            value = m.group(1) if m.groups() else m.group()
            raw[name] = _convert(name, value, day_first)
    return raw, dict.fromkeys(raw, 0.95)


def _convert(name: str, value: str, day_first: bool) -> Any:
    """Typed value for a template capture; unparseable captures stay raw so validation reports them."""
    converted: Any = None
    if name in _AMOUNT_FIELDS:
        converted = parse_amount(value)
    elif name in _DATE_FIELDS:
        converted = parse_date(value, day_first=day_first)
    elif name == "currency":
        converted = value.strip() if re.fullmatch(r"\s*[A-Za-z]{3}\s*", value) else parse_currency(value)
    elif name == "tax_rate":
        converted = parse_percent(value) or parse_amount(value)
    return converted if converted is not None else clean_text(value)
