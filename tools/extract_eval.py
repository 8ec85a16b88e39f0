"""Field accuracy of the local extractor on the dev documents of one type, per field and per source folder.

    nice -n 10 .venv/bin/python tools/extract_eval.py --type form --folder funsd_forms
    nice -n 10 .venv/bin/python tools/extract_eval.py --type receipt --half even --misses 20

Each document is parsed once by the real local parser (`get_parser(Settings())`, content type sniffed from
the bytes) and its ParsedDocument is cached as JSON in /tmp/extract_cache/<sha256>.json (OCR is slow; delete
the file to re-parse after a parser change). The extractor is `LocalExtractor` given the TRUE doc_type, so
the numbers measure extraction alone. Scoring is `docflow.evaluation.compare.field_score`.

`--half even|odd` keeps the documents whose sorted index within their folder is even or odd, so that rules
developed while looking at one half can be checked on the other.
"""

import argparse
import csv
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev"
CACHE = Path("/tmp/extract_cache")


def dev_docs(manifest: Path, doc_type: str, folder: str | None, half: str | None) -> list[dict[str, Any]]:
    """The manifest's documents of `doc_type` that have field truth, sorted by folder and file name."""
    docs = []
    with manifest.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["doc_type"] != doc_type or not row.get("truth_path"):
                continue
            path = manifest.parent / row["path"]
            if folder and path.parent.name != folder:
                continue
            truth = json.loads((manifest.parent / row["truth_path"]).read_text(encoding="utf-8"))
            if truth.get("fields"):
                docs.append({"path": path, "folder": path.parent.name, "fields": truth["fields"]})
    docs.sort(key=lambda d: (d["folder"], d["path"].name))
    index: dict[str, int] = defaultdict(int)
    for doc in docs:
        doc["half"] = "odd" if index[doc["folder"]] % 2 else "even"
        index[doc["folder"]] += 1
    return [d for d in docs if half is None or d["half"] == half]


def parse_cached(path: Path) -> Any:
    """The document's ParsedDocument, from the cache or parsed now (and cached)."""
    from docflow.backends import get_parser
    from docflow.models import ParsedDocument, RawFile
    from docflow.settings import Settings
    from docflow.sniff import sniff_content_type

    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cached = CACHE / f"{sha}.json"
    if cached.exists():
        return ParsedDocument.model_validate_json(cached.read_text(encoding="utf-8"))
    raw = RawFile(
        doc_id=path.stem,
        sha256=sha,
        size=len(data),
        content_type=sniff_content_type(data, path.name),
        filename=path.name,
    )
    parsed = get_parser(Settings()).parse(data, raw)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(parsed.model_dump_json(), encoding="utf-8")
    tmp.replace(cached)
    return parsed


def _short(value: Any, width: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _misses(field: str, truth: Any, predicted: Any) -> list[str]:
    """Readable misses of one field; for a dict (key_values) one line per truth key not scored 1."""
    from docflow.evaluation.compare import FUZZY, field_score, fuzzy_ratio

    if not isinstance(truth, dict):
        return [f"{field}: truth {_short(truth)} got {_short(predicted)}"]
    pred = predicted if isinstance(predicted, dict) else {}
    lines = []
    for key, answer in truth.items():
        match = max(pred, key=lambda k: fuzzy_ratio(key, k), default=None)
        if match is None or fuzzy_ratio(key, match) < FUZZY:
            lines.append(f"{field}[{key!r}]: no key (truth {_short(answer, 50)}; nearest {match!r})")
        elif field_score(answer, pred[match]) < 1.0:
            lines.append(f"{field}[{key!r}]: truth {_short(answer, 50)} got {_short(pred[match], 50)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--type", required=True, help="doc_type of the manifest, e.g. form, receipt")
    ap.add_argument("--folder", help="only this source folder, e.g. funsd_forms")
    ap.add_argument("--half", choices=["even", "odd"], help="only the even or odd sorted indexes per folder")
    ap.add_argument("--misses", type=int, default=10, help="misses shown per document (0: none)")
    ap.add_argument("--manifest", type=Path, default=DEV / "manifest.csv")
    args = ap.parse_args(argv)

    from docflow.backends.extract.local import LocalExtractor
    from docflow.evaluation.compare import field_score
    from docflow.models import Classification
    from docflow.settings import Settings

    docs = dev_docs(args.manifest, args.type, args.folder, args.half)
    if not docs:
        print("no documents with field truth", file=sys.stderr)
        return 1
    extractor = LocalExtractor.from_settings(Settings())
    classification = Classification(doc_type=args.type, confidence=1.0, reasoning="true type", backend="eval")
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for doc in docs:
        parsed = parse_cached(doc["path"])
        fields = extractor.extract(parsed, classification).fields
        misses: list[str] = []
        for field, truth in doc["fields"].items():
            if truth is None:
                continue
            score = field_score(truth, fields.get(field))
            scores[doc["folder"]][field].append(score)
            if score < 1.0:
                misses += _misses(field, truth, fields.get(field))
        if args.misses and misses:
            print(f"--- {doc['folder']}/{doc['path'].name} ({doc['half']})")
            for line in misses[: args.misses]:
                print("   ", line)
    print()
    for folder, by_field in sorted(scores.items()):
        n = max(len(v) for v in by_field.values())
        print(f"{folder} ({n} documents)")
        for field, values in sorted(by_field.items()):
            print(f"  {field:<24} {sum(values) / len(values):.3f}  (n={len(values)})")
        all_scores = [s for values in by_field.values() for s in values]
        print(f"  {'(all fields)':<24} {sum(all_scores) / len(all_scores):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
