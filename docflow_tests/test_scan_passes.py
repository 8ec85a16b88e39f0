"""A bucket too big to list in one tick is listed in passes over several ticks (real SeaweedFS, Postgres)."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from docflow import ingest
from docflow.ingest import ScanCursor, scan


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(ingest, "LIST_PAGE", 4)  # the time budget is checked every 4 keys instead of 1000


def _tick(rt, cursor: ScanCursor, prefix: str) -> ingest.ScanResult:
    return scan(rt.bucket, rt.store, cursor, prefix=prefix, list_budget_s=0.0)  # budget: one "page" a tick


def test_a_listing_spread_over_ticks_finds_every_object_once(rt, small_pages) -> None:
    prefix = f"passes-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}t{i % 3}/doc-{i:02d}.txt" for i in range(10)]
    for i, key in enumerate(keys):
        rt.bucket.put_bytes(key, f"document {i} {prefix}".encode())

    cursor, found, ticks = ScanCursor(), [], 0
    while True:
        result = _tick(rt, cursor, prefix)
        found += [d.key for d in result.new]
        cursor, ticks = result.cursor, ticks + 1
        if not cursor.after:
            break
        assert cursor.since == ScanCursor().since  # the watermark waits for the end of the pass
    assert ticks == 3  # 4 + 4 + 2 keys
    assert sorted(found) == sorted(keys)
    assert cursor.since > ScanCursor().since and cursor.pass_started is None

    # the next pass finds nothing new, and an object written behind the listing during a pass is not lost
    first = _tick(rt, cursor, prefix)
    assert first.new == [] and first.cursor.after
    time.sleep(1.1)  # a Last-Modified second of its own
    behind = f"{prefix}t0/aaa-late.txt"  # sorts before everything the pass has listed
    rt.bucket.put_bytes(behind, f"late {prefix}".encode())
    cursor = first.cursor
    while cursor.after:
        result = _tick(rt, cursor, prefix)
        assert result.new == []
        cursor = result.cursor
    later = _tick(rt, cursor, prefix)
    assert [d.key for d in later.new] == [behind]


def test_a_small_bucket_is_listed_whole_every_tick(rt) -> None:
    prefix = f"whole-{uuid.uuid4().hex[:8]}/"
    for i in range(5):
        rt.bucket.put_bytes(f"{prefix}t/doc-{i}.txt", f"small {i} {prefix}".encode())
    result = scan(rt.bucket, rt.store, ScanCursor(), prefix=prefix)
    assert len(result.new) == 5 and result.cursor.after == ""


def test_listing_reads_what_boto3_reads_across_pages_and_odd_keys(rt) -> None:
    """`Bucket.list` reads ListObjectsV2 pages itself (cheaper than botocore's parser): same objects, same
    order, keys with spaces, plus signs, percent signs, non-ASCII and control characters intact, more than
    one page, and `start_after`."""
    prefix = f"listing-{uuid.uuid4().hex[:8]}/"
    odd = ["a b+c%20d.txt", "résumé ñ 文件.pdf", "tab\there.txt", "bell\x07.txt", "q?x=1&y=2#z.txt"]
    keys = [f"{prefix}{name}" for name in odd] + [f"{prefix}bulk/{i:05d}.txt" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: rt.bucket.put_bytes(k, b"x"), keys))
    pages = rt.bucket._client.get_paginator("list_objects_v2").paginate(Bucket=rt.bucket.name, Prefix=prefix)
    expected = [
        (o["Key"], o["ETag"].strip('"'), o["Size"], o["LastModified"]) for p in pages for o in p["Contents"]
    ]
    listed = [(o.key, o.etag, o.size, o.last_modified) for o in rt.bucket.list(prefix)]
    assert listed == expected and sorted(k for k, *_ in listed) == sorted(keys)
    middle = expected[600][0]
    assert [o.key for o in rt.bucket.list(prefix, start_after=middle)] == [k for k, *_ in expected[601:]]
