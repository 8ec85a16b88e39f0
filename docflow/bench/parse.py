"""`docflow bench` parse section: pages per second of the local PDF text-layer parser on the born-digital
dev PDFs, side by side with pypdf and pdfminer.six on the same files, and each one's text similarity to
the truth markdown (for the PDFs that have one). Single process, files read into memory first."""

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docflow.settings import Settings

DEV = Path(__file__).resolve().parents[3] / "shared" / "eval" / "dev"


def _dev_pdfs(manifest: Path) -> list[tuple[Path, Path | None]]:
    out = []
    with manifest.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = manifest.parent / row["path"]
            if path.suffix.lower() != ".pdf":
                continue
            truth_md = None
            if row.get("truth_path"):
                truth_path = manifest.parent / row["truth_path"]
                name = json.loads(truth_path.read_text(encoding="utf-8")).get("text_markdown")
                truth_md = truth_path.parent / name if name else None
            out.append((path, truth_md))
    return out


def _docflow(data: bytes) -> str:
    from docflow.backends.parse.pdf import parse_pdf

    return parse_pdf(data, 100_000, ocr=False).markdown


def _pypdf(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def _pdfminer(data: bytes) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(io.BytesIO(data))


def parse_section(settings: Settings, options: Any, progress: Callable[[str], None]) -> dict[str, Any]:
    from docflow.evaluation.parse import text_similarity
    from docflow.sniff import PDF, count_pages

    manifest = Path(options.extra.get("manifest", DEV / "manifest.csv"))
    if not manifest.exists():
        return {"skipped": f"no dev manifest at {manifest}"}
    files = [(p.read_bytes(), t.read_text(encoding="utf-8") if t else None) for p, t in _dev_pdfs(manifest)]
    files = [(data, truth) for data, truth in files if _has_text_layer(data)]
    pages = sum(count_pages(data, PDF) or 0 for data, _ in files)
    report: dict[str, Any] = {"files": len(files), "pages": pages, "parsers": {}}
    for name, extract in (("docflow", _docflow), ("pypdf", _pypdf), ("pdfminer.six", _pdfminer)):
        progress(f"parse bench: {name}")
        sims, started = [], time.perf_counter()
        outputs = [extract(data) for data, _ in files]
        seconds = time.perf_counter() - started
        sims = [text_similarity(out, truth) for out, (_, truth) in zip(outputs, files, strict=True) if truth]
        report["parsers"][name] = {
            "seconds": round(seconds, 3),
            "pages_per_s": round(pages / seconds, 1) if seconds else None,
            "text_similarity": round(sum(sims) / len(sims), 4) if sims else None,
            "n_similarity": len(sims),
        }
    ours, miner = report["parsers"]["docflow"], report["parsers"]["pdfminer.six"]
    report["speedup_vs_pdfminer"] = round(ours["pages_per_s"] / miner["pages_per_s"], 1)
    return report


def _has_text_layer(data: bytes) -> bool:
    from docflow.backends.parse.local import quick_text
    from docflow.sniff import PDF

    try:
        return len(quick_text(data, PDF, max_pages=2, max_chars=2000).strip()) > 50
    except Exception:
        return False
