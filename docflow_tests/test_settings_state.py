"""Settings are read when asked and passed in; what is kept per process (backends, the search's type words)
follows the value it was built from, so no test has a cache to clear."""

import os
from pathlib import Path

import pytest

from docflow import backends
from docflow.retrieval import type_words
from docflow.settings import Settings, get_settings

RULES = Path(__file__).resolve().parents[1] / "data" / "doc_types.yaml"


def test_get_settings_reads_the_environment_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCFLOW_CHUNK_TOKENS", "111")
    assert get_settings().chunk_tokens == 111
    monkeypatch.setenv("DOCFLOW_CHUNK_TOKENS", "222")
    assert get_settings().chunk_tokens == 222


def test_a_backend_is_built_once_per_settings_value() -> None:
    parser = backends.get_parser(Settings(parse_backend="local", max_pages=10))
    assert backends.get_parser(Settings(parse_backend="local", max_pages=10)) is parser
    other = backends.get_parser(Settings(parse_backend="local", max_pages=20))
    assert other is not parser
    assert isinstance(other, backends.Parser)


def test_type_words_follow_an_edited_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "doc_types.yaml"
    rules.write_text(RULES.read_text(encoding="utf-8"), encoding="utf-8")
    assert type_words(str(rules))["agreement"] == ("contract", False)
    assert "tenancy" not in type_words(str(rules))
    text = rules.read_text(encoding="utf-8").replace(
        "filename: [contract, agreement,", "filename: [contract, tenancy,"
    )
    rules.write_text(text, encoding="utf-8")
    stat = rules.stat()
    os.utime(rules, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a coarse clock: later
    words = type_words(str(rules))
    assert words["tenancy"] == ("contract", False)
    assert "agreement" not in words
