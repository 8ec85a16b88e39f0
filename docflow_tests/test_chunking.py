"""Structure-aware chunking: headings, tables, overlap, page ranges, limits."""

import itertools
import re
from pathlib import Path

import pytest

from docflow.backends.embed.chunking import chunk_markdown, count_tokens
from docflow.models import Chunk, ParsedDocument

DEV_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev" / "docs"

INVOICE = """# Invoice

Invoice number INV-2024-001, issued 2024-03-01 by Acme Corp.

## Line items

| Item | Qty | Unit price | Amount |
|---|---|---|---|
| Widget | 2 | 10.00 | 20.00 |
| Gadget | 1 | 5.50 | 5.50 |
| Service fee | 1 | 12.00 | 12.00 |

## Payment

Total due: 37.50 EUR by 2024-03-31.

### Bank details

IBAN DE89 3704 0044 0532 0130 00.
"""


def parsed(markdown: str, pages: int | None = None) -> ParsedDocument:
    return ParsedDocument(markdown=markdown, text="", pages=pages, parser="test")


def prose(n_sentences: int, start: int = 0) -> str:
    return " ".join(
        f"Clause {i} sets out how the supplier invoices the buyer." for i in range(start, n_sentences)
    )


def table(n_rows: int) -> str:
    rows = [f"| item {i} | {i} | {i * 2}.00 |" for i in range(n_rows)]
    return "\n".join(["| Item | Qty | Amount |", "|---|---|---|", *rows])


def words(text: str) -> set[str]:
    return set(re.findall(r"\S+", text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0), ("   \n", 0), ("Hello, world!", 4), ("total due: 37.50", 6), ("|a|b|", 5)],
)
def test_count_tokens(text: str, expected: int) -> None:
    assert count_tokens(text) == expected


@pytest.mark.parametrize("markdown", ["", "   ", "\n\n\t\n", "<!-- page 1 -->\n\n<!-- page 2 -->\n"])
def test_empty_markdown_gives_no_chunks(markdown: str) -> None:
    assert chunk_markdown(parsed(markdown), 100, 10) == []


def test_headings_give_heading_paths() -> None:
    chunks = chunk_markdown(parsed(INVOICE), 200, 20)
    assert [c.heading_path for c in chunks] == [
        ["Invoice"],
        ["Invoice", "Line items"],
        ["Invoice", "Payment"],
        ["Invoice", "Payment", "Bank details"],
    ]
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert chunks[1].text.startswith("## Line items\n")
    assert "IBAN DE89" in chunks[3].text and "IBAN" not in chunks[2].text


@pytest.mark.parametrize(
    ("markdown", "path"),
    [
        ("Text before any heading.", []),
        ("# A\n\n## B\n\ntext", ["A", "B"]),
        ("# A\n\n### Deep\n\ntext", ["A", "Deep"]),
        ("# A\n\n## B\n\nb\n\n# C\n\ntext", ["C"]),  # a new top-level heading resets the path
        ("## **Bold** title ##\n\ntext", ["Bold title"]),
        ("```python\n# a comment, not a heading\n```\n\ntext", []),
    ],
)
def test_heading_path_of_last_chunk(markdown: str, path: list[str]) -> None:
    assert chunk_markdown(parsed(markdown), 100, 10)[-1].heading_path == path


def test_heading_without_text_joins_the_next_section() -> None:
    chunks = chunk_markdown(parsed("# Report\n\n## Summary\n\nAll good."), 100, 10)
    assert len(chunks) == 1
    assert chunks[0].text == "# Report\n## Summary\n\nAll good."


def test_table_that_fits_is_kept_whole() -> None:
    chunks = chunk_markdown(parsed(INVOICE), 200, 20)
    line_items = next(c for c in chunks if c.heading_path[-1] == "Line items")
    expected_table = INVOICE.split("## Line items\n\n")[1].split("\n\n")[0]
    assert expected_table in line_items.text


def test_table_is_not_split_to_fill_a_chunk() -> None:
    markdown = f"## Items\n\n{prose(8)}\n\n{table(10)}"
    chunks = chunk_markdown(parsed(markdown), 200, 20)
    assert sum(table(10) in c.text for c in chunks) == 1
    assert all(c.n_tokens <= 200 for c in chunks)


def test_long_table_is_split_by_rows_with_header_repeated() -> None:
    chunks = chunk_markdown(parsed(f"## Items\n\n{table(60)}"), 120, 20)
    assert len(chunks) > 1
    rows_seen: list[str] = []
    for chunk in chunks:
        assert chunk.n_tokens <= 120
        lines = chunk.text.splitlines()
        assert lines[:4] == ["## Items", "", "| Item | Qty | Amount |", "|---|---|---|"]
        rows_seen += lines[4:]
    assert rows_seen == table(60).splitlines()[2:]  # every row exactly once, in order, no overlap


@pytest.mark.parametrize(("max_tokens", "overlap"), [(60, 0), (60, 10), (100, 25), (250, 40)])
def test_long_text_splits_within_limit_with_overlap(max_tokens: int, overlap: int) -> None:
    body = prose(80)
    chunks = chunk_markdown(parsed(f"## Terms\n\n{body}"), max_tokens, overlap)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.n_tokens == count_tokens(chunk.text) <= max_tokens
        assert chunk.text.startswith("## Terms\n\n")  # each part reads on its own
        assert words(chunk.text) - {"##", "Terms"} <= words(body)  # never cut mid-word
    for before, after in itertools.pairwise(chunks):
        head = after.text.removeprefix("## Terms\n\n")
        shared = next((k for k in range(len(head), 0, -1) if before.text.endswith(head[:k])), 0)
        shared_tokens = count_tokens(head[:shared])
        assert shared_tokens <= overlap
        if overlap:
            assert shared_tokens >= overlap // 2
        else:
            assert shared == 0
    text = " ".join(c.text.removeprefix("## Terms\n\n") for c in chunks)
    assert all(f"Clause {i} " in text for i in range(80))  # nothing lost


def test_a_word_longer_than_a_chunk_is_cut_to_fit() -> None:
    url = "https://example.com/" + "/".join(f"segment{i}" for i in range(40))
    chunks = chunk_markdown(parsed(f"See {url} for details."), 30, 5)
    assert all(c.n_tokens <= 30 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "").count("segment39") == 1


def test_page_markers_give_page_ranges_and_are_removed() -> None:
    markdown = (
        "<!-- page 1 -->\n\n# Contract\n\nFirst page text.\n\n"
        "<!-- page 2 -->\n\nSecond page text.\n\n"
        "## Terms\n\nThis paragraph starts on page two\n<!-- page 3 -->\nand ends on page three.\n\n"
        "<!-- page 4 -->\n\n## Signatures\n\nSigned."
    )
    chunks = chunk_markdown(parsed(markdown, pages=4), 200, 10)
    assert [(c.heading_path[-1], c.page_start, c.page_end) for c in chunks] == [
        ("Contract", 1, 2),
        ("Terms", 2, 3),
        ("Signatures", 4, 4),
    ]
    assert not any("<!--" in c.text for c in chunks)
    assert "page two\nand ends" in chunks[1].text  # the marker does not break the paragraph


def test_split_section_pages_follow_the_text() -> None:
    pages = [f"<!-- page {p} -->\n\n{prose(10 * p, 10 * (p - 1))}" for p in range(1, 6)]
    chunks = chunk_markdown(parsed("\n\n".join(pages), pages=5), 80, 10)
    starts = [c.page_start for c in chunks]
    assert starts == sorted(starts) and starts[0] == 1 and chunks[-1].page_end == 5
    for chunk in chunks:
        assert chunk.page_start is not None and chunk.page_end is not None
        numbers = [int(n) for n in re.findall(r"Clause (\d+) ", chunk.text)]
        # clause i is on page i // 10 + 1 (the overlap may repeat the end of the previous page)
        assert chunk.page_end == max(numbers) // 10 + 1
        assert chunk.page_start <= min(numbers) // 10 + 1


@pytest.mark.parametrize(
    ("markdown", "pages", "expected"),
    [
        ("Intro.\n\n<!-- page 2 -->\n\nMore.", 2, [(1, 2)]),  # markers only between pages
        ("No markers.", 1, [(1, 1)]),
        ("No markers.", 3, [(None, None)]),
        ("No markers.", None, [(None, None)]),
        ("<!-- page 7 --> Inline.", None, [(7, 7)]),
    ],
)
def test_page_range_edge_cases(markdown: str, pages: int | None, expected: list[tuple]) -> None:
    chunks = chunk_markdown(parsed(markdown, pages=pages), 100, 10)
    assert [(c.page_start, c.page_end) for c in chunks] == expected


def test_metadata_is_copied_per_chunk() -> None:
    metadata = {"doc_id": "abc", "tags": ["x"]}
    chunks = chunk_markdown(parsed(INVOICE), 200, 20, metadata)
    assert len(chunks) > 1 and all(c.metadata == metadata for c in chunks)
    chunks[0].metadata["tags"].append("y")
    assert metadata == {"doc_id": "abc", "tags": ["x"]}
    assert chunks[1].metadata == metadata
    assert chunk_markdown(parsed(INVOICE), 200, 20)[0].metadata == {}


def test_output_is_deterministic() -> None:
    markdown = f"{INVOICE}\n\n## Terms\n\n{prose(50)}\n\n{table(40)}"
    first = chunk_markdown(parsed(markdown, pages=1), 90, 15, {"k": 1})
    assert first == chunk_markdown(parsed(markdown, pages=1), 90, 15, {"k": 1})
    assert all(isinstance(c, Chunk) for c in first)


def test_max_tokens_too_small_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_markdown(parsed("text"), 4, 0)


@pytest.mark.skipif(not DEV_DOCS.is_dir(), reason="dev eval documents not available")
def test_real_pdfs_chunk_within_limits() -> None:
    pdfium = pytest.importorskip("pypdfium2")
    for pdf in sorted(DEV_DOCS.rglob("*.pdf"))[:12]:
        document = pdfium.PdfDocument(str(pdf))
        pages = [document[i].get_textpage().get_text_range() for i in range(len(document))]
        markdown = "\n\n".join(f"<!-- page {i + 1} -->\n\n{text}" for i, text in enumerate(pages))
        chunks = chunk_markdown(parsed(markdown, pages=len(pages)), 250, 40)
        assert chunks, pdf.name
        for chunk in chunks:
            assert chunk.n_tokens <= 250
            assert "<!--" not in chunk.text
            assert chunk.page_start is not None and chunk.page_end is not None
            assert 1 <= chunk.page_start <= chunk.page_end <= len(pages)
