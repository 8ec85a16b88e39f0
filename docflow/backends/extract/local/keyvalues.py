"""Forms and everything else: key/value pairs."""

import re

from docflow.backends.extract.local.lines import Conf, Lines, Raw
from docflow.backends.extract.normalize import clean_text

_KEY_VALUE = re.compile(r"^(?P<key>[^\W\d][^:]{0,60}?)\s*:\s*(?P<value>\S.*)$")


def extract_key_values(text: str) -> tuple[Raw, Conf]:
    lines = Lines(text)
    pairs: dict[str, str | list[str]] = {}

    def add(key: str, value: str) -> None:
        key, value = clean_text(key), clean_text(value)
        if not key or not value or len(key.split()) > 8:
            return
        if key not in pairs:
            pairs[key] = value
        else:
            existing = pairs[key]
            pairs[key] = [*existing, value] if isinstance(existing, list) else [existing, value]

    for i, line in enumerate(lines.lines):
        if i in lines.column_values:
            add(line, lines.column_values[i])
        elif m := _KEY_VALUE.match(line):
            add(m.group("key"), m.group("value"))
    return ({"key_values": pairs}, {"key_values": 0.5}) if pairs else ({}, {})
