"""Compare the OCR engines that run offline here on the dev scans, with and without image preprocessing.

    nice -n 10 .venv/bin/python tools/ocr_compare.py [--engines a,b] [--preps x,y] [--cache /tmp/ocr/cache]

Engines: `docflow` (what docflow.backends.parse.ocr.ocr_lines does now), `rapidocr14` (rapidocr-onnxruntime
1.4, PP-OCRv4, as docflow used it before), `rapidocr3` (rapidocr 3.x as it comes, its wheel's bundled PP-OCRv6
models) and `tesseract` (Debian's tesseract-ocr through pytesseract). An engine whose package or binary is
missing is skipped.

Measures (the dev scans have field truth, no text truth):
- receipts: share of the truth field values (store name, address, total, date) found in the OCR text. Text
  values match by rapidfuzz partial_ratio >= 90 over lowercase letters and digits; the total must appear as an
  amount with two decimals; the date must appear as a date (any common layout) on the same day.
- forms: share of the FUNSD key_values strings (questions and answers) found the same way; strings shorter
  than 6 letters and digits must appear as whole words.
- rendered: text similarity (docflow.evaluation.parse.text_similarity) of born-digital receipt and invoice
  PDFs' first page rendered at 200 dpi against its text layer.
- pages/s: pages OCRed per second over all of the above, preprocessing included (one process; the machine is
  shared, so compare rows of one run).

OCR outputs are cached as JSON under --cache, keyed by the input's bytes, the engine's version and the source
of the engine adapter and the preprocessing, so a change to any of them is recomputed.
"""

import argparse
import ast
import calendar
import contextlib
import hashlib
import inspect
import io
import json
import re
import sys
import textwrap
import time
import unicodedata
from datetime import date
from pathlib import Path

from rapidfuzz import fuzz

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docflow.backends.parse import ocr  # noqa: E402
from docflow.evaluation import load_manifest  # noqa: E402
from docflow.evaluation.parse import rendered_pages, text_similarity  # noqa: E402

OCR_SOURCE = Path(ocr.__file__).read_text()  # as imported: a later edit must not mislabel the cache
DEV = ROOT.parent / "shared" / "eval" / "dev"
Line = tuple[str, float, float, float, float, float]  # text, left, top, right, bottom, confidence


# --- engines: each returns lines in pixels of the image it is given --------------------------------------


def _docflow():
    from importlib.metadata import version

    def run(image) -> list[Line]:
        return [(*line[:5], line[5] if len(line) > 5 else 1.0) for line in ocr.ocr_lines(image)]

    return f"rapidocr {version('rapidocr')} ocr.py {hashlib.sha1(OCR_SOURCE.encode()).hexdigest()[:8]}", run


def _rapidocr14():
    """docflow's OCR before rapidocr 3: PP-OCRv4, lines without spaces re-spaced from the character boxes."""
    from importlib.metadata import version

    import numpy as np
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def run(image) -> list[Line]:
        result, _ = engine(np.asarray(image.convert("RGB")), return_word_box=True)
        lines = []
        for item in result or []:
            box, text, score = item[0], item[1], item[2]
            if len(item) > 4 and item[4] and " " not in text.strip() and len(text) > ocr.RESPACE_MIN_CHARS:
                text = ocr._respace(item[3], item[4])
            lines.append(_box_line(box, text, score))
        return lines

    return f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')}", run


def _rapidocr3():
    from importlib.metadata import version

    import numpy as np
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "warning"})

    def run(image) -> list[Line]:
        out = engine(np.asarray(image.convert("RGB")))
        if out.boxes is None:
            return []
        return [_box_line(b, t, s) for b, t, s in zip(out.boxes.tolist(), out.txts, out.scores, strict=True)]

    return f"rapidocr {version('rapidocr')}", run


def _tesseract():
    import pytesseract

    tesseract_version = str(pytesseract.get_tesseract_version())  # raises when the binary is absent

    def run(image) -> list[Line]:
        data = pytesseract.image_to_data(image, output_type=pytesseract.Output.DICT)
        lines: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if word.strip() and float(data["conf"][i]) >= 0:
                key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                lines.setdefault(key, []).append(i)
        out: list[Line] = []
        for words in lines.values():
            left = min(data["left"][i] for i in words)
            top = min(data["top"][i] for i in words)
            right = max(data["left"][i] + data["width"][i] for i in words)
            bottom = max(data["top"][i] + data["height"][i] for i in words)
            conf = sum(float(data["conf"][i]) for i in words) / len(words) / 100
            out.append((" ".join(data["text"][i] for i in words), left, top, right, bottom, conf))
        return out

    return f"tesseract {tesseract_version}", run


def _box_line(box, text: str, score) -> Line:
    xs = [p[0] for p in box]
    ys = [p[1] for p in box]
    return (" ".join(text.split()), min(xs), min(ys), max(xs), max(ys), float(score))


ENGINES = {"docflow": _docflow, "rapidocr14": _rapidocr14, "rapidocr3": _rapidocr3, "tesseract": _tesseract}


# --- preprocessing ----------------------------------------------------------------------------------------


def _none(image):
    return image


def _upscale(image, min_side: int = 1600):
    """Small pages (faxes, thumbnails) enlarged, by the rule of ocr.upscale (with its default numbers)."""
    from PIL import Image

    factor = min_side / max(image.size)
    if factor <= 1.1:
        return image
    factor = min(factor, 3.0)
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)


def _deskew(image):
    return ocr.deskew(image)[0]


def _denoise(image):
    """A 3x3 median: removes salt-and-pepper fax noise, keeps strokes."""
    from PIL import ImageFilter

    return image.filter(ImageFilter.MedianFilter(3))


def _binarize(image):
    """Otsu threshold on grey."""
    import cv2
    import numpy as np
    from PIL import Image

    grey = np.asarray(image.convert("L"))
    _, out = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return Image.fromarray(out).convert("RGB")


PREPS = {
    "none": [_none],
    "upscale": [_upscale],
    "deskew": [_deskew],
    "denoise": [_denoise],
    "binarize": [_binarize],
    "deskew+upscale": [_deskew, _upscale],
    "denoise+upscale": [_denoise, _upscale],
}


# --- measures ---------------------------------------------------------------------------------------------


def _alnum(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def _words(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold()))


def text_found(value: str, text: str) -> bool:
    needle = _alnum(value)
    if not needle:
        return True
    if len(needle) < 6:  # short strings match anywhere by chance: whole words only
        pattern = r"\b" + r"\s?".join(map(re.escape, _words(value).split())) + r"\b"
        return re.search(pattern, _words(text)) is not None
    return fuzz.partial_ratio(needle, _alnum(text)) >= 90


def amount_found(value: float, text: str) -> bool:
    text = re.sub(r"(?<=\d)\s*([.,])\s*(?=\d)", r"\1", unicodedata.normalize("NFKC", text))
    whole, cents = f"{float(value):.2f}".split(".")
    grouped = f"{int(whole):,}"
    pattern = rf"(?<![\d.,])(?:{whole}|{re.escape(grouped)})[.,]{cents}(?!\d)"
    return re.search(pattern, text) is not None


_MONTHS = {name.casefold(): number for number, name in enumerate(calendar.month_abbr) if name}


def dates_in(text: str) -> set[date]:
    """Every date a common layout could mean: d/m/y, m/d/y, y/m/d (separators / - . or space), month names."""
    found: set[date] = set()
    text = unicodedata.normalize("NFKC", text).casefold()

    def add(y: int, m: int, d: int) -> None:
        if y < 100:
            y += 2000
        with contextlib.suppress(ValueError):  # not a day of the calendar
            found.add(date(y, m, d))

    for a, b, c in re.findall(r"(?<!\d)(\d{1,4})\s?[/.\-]\s?(\d{1,2})\s?[/.\-]\s?(\d{2,4})(?!\d)", text):
        x, y, z = int(a), int(b), int(c)
        if len(a) == 4:
            add(x, y, z)
        else:
            add(z, y, x)
            add(z, x, y)
    for d, mon, y in re.findall(r"(?<!\d)(\d{1,2})[\s\-/.]*([a-z]{3})[a-z]*[\s\-/.,]*(\d{2,4})(?!\d)", text):
        if mon in _MONTHS:
            add(int(y), _MONTHS[mon], int(d))
    for mon, d, y in re.findall(r"\b([a-z]{3})[a-z]*[\s.]*(\d{1,2})[\s,]+(\d{2,4})(?!\d)", text):
        if mon in _MONTHS:
            add(int(y), _MONTHS[mon], int(d))
    return found


def receipt_hits(fields: dict, text: str) -> tuple[int, int]:
    hits = total = 0
    for name in ("store_name", "address"):
        if fields.get(name):
            total += 1
            hits += text_found(str(fields[name]), text)
    if fields.get("total") is not None:
        total += 1
        hits += amount_found(fields["total"], text)
    if fields.get("date"):
        total += 1
        hits += date.fromisoformat(fields["date"]) in dates_in(text)
    return hits, total


def form_hits(fields: dict, text: str) -> tuple[int, int]:
    strings: list[str] = []
    for key, value in (fields.get("key_values") or {}).items():
        strings.append(key)
        strings.extend(value if isinstance(value, list) else [value])
    strings = [s for s in map(str, strings) if _alnum(s)]
    return sum(text_found(s, text) for s in strings), len(strings)


# --- running ----------------------------------------------------------------------------------------------


def _pages():
    """(kind, name, image bytes as PNG or the file, truth): scanned receipts, scanned forms, rendered PDFs."""
    for kind, folder, pattern in (("receipt", "sroie_receipts", "*.jpg"), ("form", "funsd_forms", "*.png")):
        for path in sorted((DEV / "docs" / folder).glob(pattern)):
            truth = json.loads((DEV / "truth" / folder / f"{path.stem}.json").read_text(encoding="utf-8"))
            yield kind, path.name, path.read_bytes(), truth.get("fields", {})
    for item, image, reference in rendered_pages(load_manifest(DEV / "manifest.csv")):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        yield "rendered", item.path.name, buffer.getvalue(), reference


def _ocr_cached(cache: Path | None, key: str, run, data: bytes, steps) -> tuple[list[Line], float]:
    path = cache / f"{key}.json" if cache else None
    if path and path.exists():
        saved = json.loads(path.read_text())
        return [tuple(line) for line in saved["lines"]], saved["seconds"]
    from PIL import Image

    start = time.perf_counter()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    size = image.size
    for step in steps:
        image = step(image)
    sx, sy = size[0] / image.width, size[1] / image.height  # boxes back in the input's pixels
    lines = [(t, lf * sx, tp * sy, rt * sx, bt * sy, c) for t, lf, tp, rt, bt, c in run(image)]
    seconds = time.perf_counter() - start
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"lines": lines, "seconds": seconds}))
    return lines, seconds


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--preps", default="none,upscale,deskew,deskew+upscale")
    parser.add_argument("--cache", default="/tmp/ocr/cache", help="'' to cache nothing")
    parser.add_argument("--kinds", default="receipt,form,rendered", help="which pages to OCR")
    parser.add_argument("--limit", type=int, default=0, help="at most this many pages of each kind")
    parser.add_argument("--json", help="write the per-page scores here")
    args = parser.parse_args()
    cache = Path(args.cache) if args.cache else None
    pages = [page for page in _pages() if page[0] in args.kinds.split(",")]
    if args.limit:
        pages = list(_pages_by_kind(pages, args.limit))
    rows, details = [], []
    for engine_name in args.engines.split(","):
        try:
            version, run = ENGINES[engine_name]()
        except Exception as exc:  # a missing package or binary: that engine is left out
            print(f"skipping {engine_name}: {exc}", file=sys.stderr)
            continue
        adapter = _code(ENGINES[engine_name])
        run(_warm_up_image())  # model loading is not counted in pages/s
        for prep in args.preps.split(","):
            steps = PREPS[prep]
            code = adapter + "".join(_code(s) for s in steps)
            if any("ocr." in inspect.getsource(s) for s in steps):
                code += OCR_SOURCE  # preprocessing that comes from ocr.py
            scores: dict[str, list[int | float]] = {"receipt": [0, 0], "form": [0, 0], "rendered": []}
            seconds = 0.0
            for kind, name, data, truth in pages:
                digest = hashlib.sha256(data + version.encode() + code.encode()).hexdigest()[:24]
                lines, spent = _ocr_cached(cache, f"{engine_name}/{prep}/{digest}", run, data, steps)
                seconds += spent
                if engine_name != "docflow":  # docflow orders its lines itself (a tilted page by its rows)
                    lines = ocr._reading_order(lines)
                text = "\n".join(line[0] for line in lines)
                if kind == "rendered":
                    score = text_similarity(text, truth)
                    scores["rendered"].append(score)
                else:
                    hits, total = (receipt_hits if kind == "receipt" else form_hits)(truth, text)
                    scores[kind][0] += hits
                    scores[kind][1] += total
                    score = hits / total if total else None
                details.append(
                    {"engine": engine_name, "prep": prep, "kind": kind, "page": name, "score": score}
                )
            rendered = scores["rendered"]
            rows.append(
                (
                    engine_name,
                    version,
                    prep,
                    scores["receipt"][0] / max(1, scores["receipt"][1]),
                    scores["form"][0] / max(1, scores["form"][1]),
                    sum(rendered) / max(1, len(rendered)),
                    len(pages) / seconds if seconds else 0.0,
                )
            )
            print(_row(*rows[-1]), flush=True)
    n = {k: sum(1 for p in pages if p[0] == k) for k in ("receipt", "form", "rendered")}
    print(f"\n{n['receipt']} receipt scans, {n['form']} form scans, {n['rendered']} rendered PDF pages\n")
    print(_row("engine", "version", "preprocessing", "receipts", "forms", "rendered", "pages/s"))
    for row in rows:
        print(_row(*row))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "pages": details}, indent=1))


def _code(function) -> str:
    """A function's code without its formatting and comments, so a reformat keeps the cache."""
    return ast.dump(ast.parse(textwrap.dedent(inspect.getsource(function))))


def _warm_up_image():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 80), "white")
    ImageDraw.Draw(image).text((10, 30), "Total 12.50 paid", fill="black")
    return image


def _pages_by_kind(pages, limit: int):
    counts: dict[str, int] = {}
    for page in pages:
        counts[page[0]] = counts.get(page[0], 0) + 1
        if counts[page[0]] <= limit:
            yield page


def _row(engine, version, prep, receipts, forms, rendered, rate) -> str:
    cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in (receipts, forms, rendered)]
    rate_cell = f"{rate:.2f}" if isinstance(rate, float) else str(rate)
    return f"{engine:<11} {version:<46} {prep:<16} {cells[0]:>8} {cells[1]:>6} {cells[2]:>8} {rate_cell:>7}"


if __name__ == "__main__":
    main()
