"""Table cell recall of a PDF table finder on the dev PDFs that have table truth, per source folder.

    .venv/bin/python tools/table_eval.py                      # docflow's own parser (parse_pdf)
    .venv/bin/python tools/table_eval.py --parser pdfplumber  # or camelot-stream, camelot-lattice
    .venv/bin/python tools/table_eval.py --docs --json /tmp/me/tables.json

Scoring is `docflow.evaluation.parse.table_cells` (the same as `docflow eval`) on the parser's markdown;
the libraries' tables are turned into pipe tables first. Text similarity is printed for docflow's parser on
the documents with text truth (the libraries give tables only). Time is wall time of the parse alone
(files read into memory first), per page. Nothing is cached.

The icdar2013_tables folder is also shown as two halves by sorted file name (A: 1st, 3rd, ...; B: 2nd,
4th, ...), so a rule tuned while looking at one half can be checked on the other.
"""

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev"
HALVED = "icdar2013_tables"


def dev_pdfs(manifest: Path) -> list[dict[str, Any]]:
    """The manifest's PDFs that have table truth: path, folder, truth tables and truth text (or None)."""
    docs = []
    with manifest.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = manifest.parent / row["path"]
            if path.suffix.lower() != ".pdf" or not row.get("truth_path"):
                continue
            truth_path = manifest.parent / row["truth_path"]
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
            if not truth.get("tables_markdown"):
                continue
            text_name = truth.get("text_markdown")
            docs.append(
                {
                    "path": path,
                    "folder": path.parent.name,
                    "tables": (truth_path.parent / truth["tables_markdown"]).read_text(encoding="utf-8"),
                    "text": (truth_path.parent / text_name).read_text(encoding="utf-8")
                    if text_name
                    else None,
                }
            )
    docs.sort(key=lambda d: (d["folder"], d["path"].name))
    by_folder: dict[str, int] = defaultdict(int)
    for doc in docs:
        doc["half"] = "AB"[by_folder[doc["folder"]] % 2]
        by_folder[doc["folder"]] += 1
    return docs


# --- parsers: PDF bytes -> markdown with pipe tables ------------------------------------------------------


def _docflow(data: bytes, path: Path) -> str:
    from docflow.backends.parse.pdf import parse_pdf

    return parse_pdf(data, 100_000, ocr=False).markdown


def _tables_markdown(tables: list[list[list[str]]]) -> str:
    from docflow.backends.parse.markdown import pipe_table

    rows = [[[" ".join((cell or "").split()) for cell in row] for row in table] for table in tables]
    return "\n\n".join(pipe_table(table) for table in rows if table and any(any(row) for row in table))


def _camelot(flavor: str) -> Callable[[bytes, Path], str]:
    def parse(data: bytes, path: Path) -> str:
        import camelot

        tables = camelot.read_pdf(str(path), pages="all", flavor=flavor)
        return _tables_markdown([table.df.values.tolist() for table in tables])

    return parse


def _pdfplumber(data: bytes, path: Path) -> str:
    import io

    import pdfplumber

    settings = {"vertical_strategy": "text", "horizontal_strategy": "text"}
    tables: list[list[list[str]]] = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            tables += [[[c or "" for c in row] for row in t] for t in page.extract_tables(settings)]
    return _tables_markdown(tables)


PARSERS: dict[str, Callable[[bytes, Path], str]] = {
    "docflow": _docflow,
    "camelot-stream": _camelot("stream"),
    "camelot-lattice": _camelot("lattice"),
    "pdfplumber": _pdfplumber,
}


# --- measuring ---------------------------------------------------------------------------------------------


def measure(parser: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    from docflow.evaluation.parse import table_cells, text_similarity
    from docflow.sniff import PDF, count_pages

    parse = PARSERS[parser]
    rows = []
    for doc in docs:
        data = doc["path"].read_bytes()
        started = time.perf_counter()
        try:
            markdown, error = parse(data, doc["path"]), None
        except Exception as exc:  # a library failing on one file scores 0 there, like a failed document
            markdown, error = "", f"{type(exc).__name__}: {exc}"[:200]
        seconds = time.perf_counter() - started
        found, total = table_cells(doc["tables"], markdown)
        row = {
            "path": f"{doc['folder']}/{doc['path'].name}",
            "folder": doc["folder"],
            "half": doc["half"],
            "pages": count_pages(data, PDF) or 0,
            "seconds": seconds,
            "found": found,
            "total": total,
        }
        if doc["text"] is not None and parser == "docflow":
            row["text_similarity"] = text_similarity(markdown, doc["text"])
        if error:
            row["error"] = error
        rows.append(row)
    return {"parser": parser, "documents": rows, "groups": _groups(rows)}


def _groups(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        members[row["folder"]].append(row)
        if row["folder"] == HALVED:
            members[f"{HALVED}[{row['half']}]"].append(row)
        members["all"].append(row)
    out = {}
    for name in sorted(members, key=lambda n: (n == "all", n)):
        group = members[name]
        found, total = sum(r["found"] for r in group), sum(r["total"] for r in group)
        pages, seconds = sum(r["pages"] for r in group), sum(r["seconds"] for r in group)
        sims = [r["text_similarity"] for r in group if "text_similarity" in r]
        out[name] = {
            "docs": len(group),
            "cells": total,
            "recall": round(found / total, 4) if total else None,
            "text_similarity": round(sum(sims) / len(sims), 4) if sims else None,
            "n_text": len(sims),
            "ms_per_page": round(1000 * seconds / pages, 1) if pages else None,
            "errors": sum(1 for r in group if "error" in r),
        }
    return out


def print_report(report: dict[str, Any], docs: bool) -> None:
    print(f"parser: {report['parser']}")
    if docs:
        for row in report["documents"]:
            recall = row["found"] / row["total"] if row["total"] else 0.0
            extra = f"  text {row['text_similarity']:.3f}" if "text_similarity" in row else ""
            error = f"  ERROR {row['error']}" if "error" in row else ""
            print(f"  {row['path']:<48} {row['found']:>5}/{row['total']:<5} {recall:.3f}{extra}{error}")
    print(f"  {'group':<26} {'docs':>4} {'cells':>6} {'recall':>7} {'text':>6} {'ms/page':>8}")
    for name, group in report["groups"].items():
        recall = f"{group['recall']:.3f}" if group["recall"] is not None else "-"
        text = f"{group['text_similarity']:.3f}" if group["text_similarity"] is not None else "-"
        ms = f"{group['ms_per_page']:.1f}" if group["ms_per_page"] is not None else "-"
        errors = f"  ({group['errors']} failed)" if group["errors"] else ""
        print(f"  {name:<26} {group['docs']:>4} {group['cells']:>6} {recall:>7} {text:>6} {ms:>8}{errors}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parser", action="append", choices=sorted(PARSERS), help="repeatable")
    parser.add_argument("--manifest", type=Path, default=DEV / "manifest.csv")
    parser.add_argument("--folder", action="append", help="only these source folders (repeatable)")
    parser.add_argument("--docs", action="store_true", help="print every document's score")
    parser.add_argument("--json", type=Path, help="write the full report(s) here")
    args = parser.parse_args(argv)
    if not args.manifest.exists():
        print(f"no dev manifest at {args.manifest}", file=sys.stderr)
        return 2
    docs = dev_pdfs(args.manifest)
    if args.folder:
        docs = [d for d in docs if d["folder"] in args.folder]
    reports = []
    for name in args.parser or ["docflow"]:
        report = measure(name, docs)
        print_report(report, args.docs)
        reports.append(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
