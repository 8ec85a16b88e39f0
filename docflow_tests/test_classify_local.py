"""The local rule classifier: cues from data/doc_types.yaml, calibrated confidence, rules as data."""

import codecs
import csv
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml

from docflow.backends import get_classifier
from docflow.backends.classify.local import (
    LocalClassifier,
    RuleClassifier,
    load_rules,
    normalize_text,
    phrase_regex,
)
from docflow.errors import BadDocument, ConfigError
from docflow.models import RawFile
from docflow.settings import Settings, data_dir

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev"
DEFAULT_RULES = data_dir() / "doc_types.yaml"

SAMPLES = {
    "invoice": """ACME Supplies Ltd.
INVOICE
Invoice number: INV-2024-0042      Invoice date: 12/03/2024      Due date: 11/04/2024
Bill to: Globex Corporation, 1 Main Street
Description              Qty   Unit price   Amount
Widgets                   10     $12.00     $120.00
Subtotal $120.00
VAT 20% $24.00
Total $144.00
Payment terms: 30 days. IBAN GB29 NWBK 6016 1331 9268 19""",
    "receipt": """CORNER CAFE
123 High Street
Cashier: Anna   Terminal 2
2 x Latte          7.00
1 x Croissant      2.50
TOTAL              9.50
CASH              10.00
CHANGE             0.50
Thank you for your purchase! Keep this receipt.""",
    "contract": """SERVICES AGREEMENT
This Services Agreement (the "Agreement") is entered into as of January 1, 2024 (the "Effective Date")
by and between Alpha Inc. ("Provider") and Beta LLC ("Client").
WHEREAS, Provider wishes to provide services; NOW, THEREFORE, the parties agree as follows:
Section 1. Term and Termination. This Agreement may be terminated by either party on notice.
Section 2. Governing Law. This Agreement shall be governed by the laws of the State of New York.
IN WITNESS WHEREOF, the parties hereto have executed this Agreement.""",
    "resume": """Jane Smith
jane.smith@example.com | +1 555 0100 | linkedin.com/in/janesmith
Experience
Senior Data Engineer, Initech — Jan 2019 – Present
Built pipelines; mentored an intern.
Education
B.S. in Computer Science, State University, GPA 3.8
Skills
Python, SQL, Spark, Kubernetes""",
    "financial_statement": """Consolidated Statement of Income
In millions of euros                     2023        2022
Revenue                                 4,631       4,370
Cost of sales                          (1,721)     (1,654)
Gross profit                            2,910       2,716
Operating profit (EBIT)                 1,043         716
Net income                                747         456
Earnings per share (in €)                3.12        1.90""",
    "letter": """12 May 2024
Ms. Laura Chen
Hiring Manager
Dear Ms. Chen,
I am writing to thank you for our conversation last week. I look forward to hearing from you.
Sincerely,
Tom Baker""",
    "form": """VISITOR REGISTRATION FORM
Name: ______________________
Address: ______________________
Date of birth: ____________
Have you visited before?  [ ] Yes  [ ] No
If yes, please specify the date: ______________
Signature: ________________  For office use only""",
    "scientific_paper": """Learning Sparse Representations for Document Layout
A. Author, B. Author
University of Somewhere, a.author@uni.edu
Abstract. In this paper we propose a method for layout analysis. Our model outperforms the
state-of-the-art baseline on two benchmark datasets [3, 12].
1 Introduction
Prior work (Smith et al., 2019) studied related problems [7].
References
[1] J. Doe et al. Proceedings of the Conference on Vision, 2020.""",
    "report": """Annual Sustainability Report 2023
Executive Summary
This report presents our key findings on emissions and progress against our strategy.
Table of Contents
1 Overview
2 Background
3 Recommendations
Appendix A: Methodology""",
}


@pytest.fixture(scope="module")
def clf() -> RuleClassifier:
    return RuleClassifier.from_settings(Settings(rules_path=DEFAULT_RULES))


@pytest.mark.parametrize("doc_type", sorted(SAMPLES))
def test_each_type_is_recognised(clf: RuleClassifier, doc_type: str) -> None:
    result = clf.classify_text(SAMPLES[doc_type])
    assert result.doc_type == doc_type, result.reasoning
    assert result.confidence >= clf.threshold
    assert result.backend == "local/rules"
    assert result.reasoning.startswith(f"{doc_type}: matched ")


@pytest.mark.parametrize(
    "text", ["", "   \n\t ", "qwrtz plmkj 8842 zzxv -- ## ;;", "1 100 200\n2 101 201\n3 102 202"]
)
def test_empty_or_garbage_is_other_with_low_confidence(clf: RuleClassifier, text: str) -> None:
    result = clf.classify_text(text)
    assert result.doc_type == "other"
    assert result.confidence < 0.2
    assert result.reasoning.startswith("other:")


def test_confidences_are_probabilities_over_all_types(clf: RuleClassifier) -> None:
    types = set(load_rules(DEFAULT_RULES).types)
    for text in [*SAMPLES.values(), ""]:
        result = clf.classify_text(text)
        assert set(result.scores) == types
        assert all(0.0 <= s <= 1.0 for s in result.scores.values())
        assert sum(result.scores.values()) <= 1.0 + 1e-6
        assert 0.0 <= result.confidence <= 1.0


def test_reasoning_names_the_evidence_and_the_runner_up(clf: RuleClassifier) -> None:
    result = clf.classify_text(SAMPLES["invoice"])
    for cue in ("'invoice number'", "'due date'", "'bill to'", "regex invoice-number-label"):
        assert cue in result.reasoning
    assert "runner-up " in result.reasoning


def test_clear_document_is_more_confident_than_an_ambiguous_one(clf: RuleClassifier) -> None:
    clear = clf.classify_text(SAMPLES["invoice"])
    ambiguous = clf.classify_text("Invoice\nReceipt\nTotal 10.00")
    assert clear.confidence > ambiguous.confidence + 0.2
    assert ambiguous.scores["invoice"] > 0.2 and ambiguous.scores["receipt"] > 0.2  # the evidence is split


def test_one_repeated_word_cannot_dominate(clf: RuleClassifier) -> None:
    few = clf.classify_text("receipt receipt receipt\n" + SAMPLES["invoice"])
    many = clf.classify_text("receipt " * 2000 + "\n" + SAMPLES["invoice"])
    assert many.scores["receipt"] == pytest.approx(few.scores["receipt"], abs=0.02)
    assert many.doc_type == "invoice"


def test_cues_on_the_first_page_weigh_more(clf: RuleClassifier) -> None:
    filler = "Lorem dolor sit amet consectetur. " * 100  # > head_chars
    early = clf.classify_text("Dear Ms. Chen,\n" + filler)
    late = clf.classify_text(filler + "\nDear Ms. Chen,\n")
    assert early.scores["letter"] > late.scores["letter"]


def test_filename_hints_count_a_little(clf: RuleClassifier) -> None:
    ambiguous = "Total 10.00\nPaid by card\nThank you"
    plain = clf.classify_text(ambiguous)
    hinted = clf.classify_text(ambiguous, filename="receipt_2024-05-01.pdf")
    assert hinted.scores["receipt"] > plain.scores["receipt"]
    # with text, a name alone is not enough evidence; with no text (a scan) it is all there is
    name_and_text = clf.classify_text("Meeting notes", filename="Invoice-0042.pdf")
    assert name_and_text.doc_type == "other"
    assert 0.0 < name_and_text.scores["invoice"] < clf.threshold
    only_name = clf.classify_text("", filename="Invoice-0042.pdf")
    assert only_name.doc_type == "invoice"
    assert clf.threshold <= only_name.confidence < 0.5
    assert "filename hint 'invoice'" in only_name.reasoning
    unrelated = clf.classify_text("", filename="inventory.pdf")
    assert unrelated.scores["invoice"] == 0.0


def test_keywords_match_whole_words_in_any_case_and_spacing() -> None:
    regex = phrase_regex("invoice number")
    assert regex.search("INVOICE\n  Number: 12")
    assert not regex.search("invoice numbers")
    assert not regex.search("reinvoice number")


def test_letter_spaced_headings_are_read_as_words(clf: RuleClassifier) -> None:
    assert normalize_text("R E C H N U N G  Nr. 12") == "RECHNUNG  Nr. 12"
    assert normalize_text("1 2 3 4 5") == "1 2 3 4 5"
    assert clf.classify_text("I N V O I C E\nTotal 10.00 EUR").scores["invoice"] > 0.5


def test_threshold_from_settings_sends_weak_evidence_to_other() -> None:
    text = "Invoice\nPayment receipt\nTotal 10.00\nPaid by card"
    lenient = RuleClassifier.from_settings(Settings(rules_path=DEFAULT_RULES, classify_threshold=0.0))
    strict = RuleClassifier.from_settings(Settings(rules_path=DEFAULT_RULES, classify_threshold=0.99))
    assert lenient.classify_text(text).doc_type in {"invoice", "receipt"}
    result = strict.classify_text(text)
    assert result.doc_type == "other"
    assert "no type reached the threshold 0.99" in result.reasoning


PO_TYPE = {
    "description": "A buyer's order to a supplier for goods, with a PO number and delivery date.",
    "keywords": {"purchase order": 5, "po number": 4, "ship via": 2, "delivery date": 2},
    "patterns": [{"name": "po-label", "regex": r"\bP\.?O\.?\s*(?:no\.?|#)\s*\d+", "weight": 3}],
    "negative": {"keywords": {"invoice number": 3}},
    "filename": ["po", "purchase-order"],
}
PO_TEXT = """PURCHASE ORDER
PO Number: 4500012
Vendor: Acme Supplies        Ship via: UPS
Delivery date: 2024-06-01
Item  Qty  Unit price
Bolts  500  0.10"""


def test_a_new_type_is_added_by_editing_the_rules_file_only(tmp_path: Path) -> None:
    rules = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    rules["types"]["purchase_order"] = PO_TYPE
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    clf = RuleClassifier.from_settings(Settings(rules_path=path))
    result = clf.classify_text(PO_TEXT, filename="po_4500012.pdf")
    assert result.doc_type == "purchase_order", result.reasoning
    assert "'purchase order'" in result.reasoning
    assert "purchase_order" in clf.rules.descriptions
    assert clf.classify_text(SAMPLES["invoice"]).doc_type == "invoice"


def test_a_minimal_rules_file_works(tmp_path: Path) -> None:
    path = tmp_path / "po_only.yaml"
    path.write_text(yaml.safe_dump({"types": {"purchase_order": PO_TYPE}}), encoding="utf-8")
    clf = RuleClassifier.from_settings(Settings(rules_path=path, classify_threshold=0.5))
    assert clf.classify_text(PO_TEXT).doc_type == "purchase_order"
    assert clf.classify_text(SAMPLES["letter"]).doc_type == "other"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("types:\n  x:\n    description: d\n    patterns: [{name: bad, regex: '(unclosed'}]\n", "bad regex"),
        ("types:\n  x:\n    description: d\n    keyword: {a: 1}\n", "keyword"),
        ("types:\n  x:\n    keywords: {a: 1}\n", "description"),
        ("types: [1, 2\n", "cannot load"),
        ("types: {}\n", "no document types"),
    ],
)
def test_broken_rules_files_raise_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        RuleClassifier.from_settings(Settings(rules_path=path))


def test_missing_rules_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load"):
        RuleClassifier.from_settings(Settings(rules_path=tmp_path / "nope.yaml"))


def test_registry_builds_the_rules_plus_embeddings_classifier() -> None:
    clf = get_classifier(Settings(classify_backend="local"))
    assert isinstance(clf, LocalClassifier)
    assert clf.name.startswith("local/rules+all-MiniLM-L6-v2")
    plain = LocalClassifier.from_settings(Settings(classify_embed_weight=0))
    assert plain.embedder is None and plain.opening_embedding("INVOICE total 10 " * 10) is None


def test_embedding_similarity_adds_evidence_and_is_named() -> None:
    clf = LocalClassifier.from_settings(Settings(rules_path=DEFAULT_RULES, classify_learned=False))
    plain = RuleClassifier.from_settings(Settings(rules_path=DEFAULT_RULES))
    text = "Our quarterly results: net sales and operating profit rose compared with the prior year."
    sims = clf.similarities(clf.opening_embedding(text))
    assert set(sims) == set(clf.rules.types)
    assert max(sims, key=lambda t: sims[t]) == "financial_statement"
    hybrid = clf.classify_text(text)
    assert hybrid.scores["financial_statement"] > plain.classify_text(text).scores["financial_statement"]
    assert "description similarity" in hybrid.reasoning


def test_content_type_cue_sends_email_and_slides_to_other(clf: RuleClassifier) -> None:
    text = "Agenda for Monday: the budget and the hiring plan."
    assert clf.classify_text(text, content_type="text/plain").scores["other"] == 0.0
    as_email = clf.classify_text(text, content_type="message/rfc822; charset=utf-8")
    assert as_email.doc_type == "other" and as_email.confidence > clf.threshold
    assert "content type message/rfc822" in as_email.reasoning
    pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    assert clf.classify_text("Invoice total 10.00", content_type=pptx).scores["other"] > 0


def _require_quick_text() -> None:
    try:
        from docflow.backends.parse.local import quick_text  # noqa: F401
    except ImportError:
        pytest.skip("docflow.backends.parse.local.quick_text is not available")


def _raw(filename: str, content_type: str, data: bytes) -> RawFile:
    return RawFile(doc_id="d", sha256="", size=len(data), content_type=content_type, filename=filename)


def test_classify_reads_bytes_with_quick_text(clf: RuleClassifier) -> None:
    _require_quick_text()
    data = SAMPLES["contract"].encode()
    result = clf.classify(data, _raw("a.txt", "text/plain", data))
    assert result.doc_type == "contract"
    with pytest.raises(BadDocument):
        clf.classify(b"", _raw("empty.txt", "text/plain", b""))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"  \n\t\n  ", "no text"),
        (codecs.BOM_UTF16_LE + random.Random(4).randbytes(4000), "not readable as text"),
    ],
)
def test_classify_refuses_text_with_nothing_readable(clf: RuleClassifier, data: bytes, reason: str) -> None:
    """The pipeline refuses these at raw_file; the classifier alone must not read a type into noise."""
    _require_quick_text()
    with pytest.raises(BadDocument, match=reason):
        clf.classify(data, _raw("notes.txt", "text/plain", data))


def test_classify_does_not_refuse_a_blank_start(clf: RuleClassifier) -> None:
    """A letter may come after the peek quick_text reads: no text there is not yet no text."""
    _require_quick_text()
    data = b" " * 100_000 + SAMPLES["contract"].encode()
    assert clf.classify(data, _raw("a.txt", "text/plain", data)).doc_type == "other"


def test_classify_unreadable_format_falls_back_to_the_filename(clf: RuleClassifier) -> None:
    _require_quick_text()
    data = b"PK\x03\x04 an archive the local parser does not read"
    result = clf.classify(data, _raw("invoice_17.zip", "application/zip", data))
    assert result.doc_type == "invoice" and result.confidence < 0.5  # the name is all there is
    assert "no text read" in result.reasoning


def _dev_sample(per_type: int) -> list[tuple[Path, str]]:
    """Up to `per_type` documents of each type, spread over its sorted paths (so over its source folders)."""
    by_type: dict[str, list[Path]] = {}
    for row in csv.DictReader((DEV / "manifest.csv").open(encoding="utf-8")):
        by_type.setdefault(row["doc_type"], []).append(DEV / row["path"])
    sample = []
    for doc_type, paths in sorted(by_type.items()):
        paths.sort()
        picks = sorted({round(i * (len(paths) - 1) / max(per_type - 1, 1)) for i in range(per_type)})
        sample += [(paths[i], doc_type) for i in picks if i < len(paths)]
    return sample


# Regression floors at the levels measured on this sample (raise them as the numbers rise). The shipped
# model was trained on the whole dev set, so this sample is not held out: it guards reading, features and
# the model file together. Accuracy on documents the model has not seen is `docflow eval --folds`.
SAMPLE_FLOORS = {"learned": 0.91, "rules": 0.7}  # measured: 35/37 and 29/37


@pytest.mark.skipif(not (DEV / "manifest.csv").exists(), reason="eval dev set absent")
def test_accuracy_on_a_sample_of_the_dev_set() -> None:
    _require_quick_text()
    from docflow.sniff import sniff_content_type

    learned = LocalClassifier.from_settings(Settings())
    assert learned.model is not None, "data/classifier.json should be the shipped model"
    rules = RuleClassifier(learned.rules)
    right: dict[str, Counter] = {"learned": Counter(), "rules": Counter()}
    total: Counter = Counter()
    for path, doc_type in _dev_sample(per_type=4):
        data = path.read_bytes()
        raw = _raw(path.name, sniff_content_type(data, path.name), data)
        text, ocr, _ = learned.read_text(data, raw)  # read once (OCR of scans), judged by both
        total[doc_type] += 1
        for name, clf in (("learned", learned), ("rules", rules)):
            result = clf.classify_text(text, filename=path.name, content_type=raw.content_type, ocr=ocr)
            right[name][doc_type] += result.doc_type == doc_type
    n = sum(total.values())
    scores = {name: sum(c.values()) / n for name, c in right.items()}
    per_type = {t: f"{right['learned'][t]}/{total[t]} (rules {right['rules'][t]})" for t in sorted(total)}
    for name, floor in SAMPLE_FLOORS.items():
        assert scores[name] >= floor, (name, scores, per_type)


# --- till receipts, sibling types, scans ---------------------------------------------------------------

TILL_RECEIPT = """KEDAI MAJU JAYA SDN BHD
NO 12, JALAN PERDANA 3, 43000 KAJANG
TAX INVOICE
Invoice No: CS0012345     Date: 14/03/2018 10:21
Cashier: AMIN
MINERAL WATER 2 1.50 3.00
TOTAL QTY: 2
ROUNDING ADJ: 0.00
TOTAL (RM): 3.00
CASH 10.00
CHANGE 7.00
THANK YOU. PLEASE COME AGAIN.
Goods sold are not returnable"""

PAID_INVOICE = """Invoice
Lumen Labs, Inc.
Invoice number: LL-1234   Invoice date: 2024-03-04
Bill to: Globex GmbH
Description  Qty  Unit price  Amount
Hosting  1  $80.00  $80.00
Subtotal $80.00
Total $80.00
PAID
Payment method: Visa ************4242   Date paid: 2024-03-04"""


def test_a_shop_tax_invoice_with_till_cues_is_a_receipt(clf: RuleClassifier) -> None:
    result = clf.classify_text(TILL_RECEIPT, filename="IMG_0042.jpg")
    assert result.doc_type == "receipt", result.reasoning
    assert "cashier" in result.reasoning or "change-line" in result.reasoning


def test_the_file_name_decides_between_sibling_types(clf: RuleClassifier) -> None:
    """A paid invoice is also a receipt: its content alone says invoice, its name can say receipt."""
    assert clf.classify_text(PAID_INVOICE, filename="doc-17.pdf").doc_type == "invoice"
    named = clf.classify_text(PAID_INVOICE, filename="receipt-2024-03-04.pdf")
    assert named.doc_type == "receipt"
    assert "named by the file name over its sibling invoice" in named.reasoning
    assert named.confidence > 0.9  # the evidence mass of the pair goes to the named type
    # without payment cues of its own (sibling_min_score) the name is only a small hint
    plain = SAMPLES["invoice"]
    assert clf.classify_text(plain, filename="receipt-2024.pdf").doc_type == "invoice"


def test_siblings_are_declared_in_the_rules_file(tmp_path: Path) -> None:
    spec = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    spec["types"]["receipt"].pop("siblings")
    spec["types"]["invoice"].pop("siblings")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    without = RuleClassifier(load_rules(path))
    assert without.classify_text(PAID_INVOICE, filename="receipt-2024-03-04.pdf").doc_type == "invoice"


def test_a_photo_without_text_layer_is_classified_from_its_ocr_text(clf: RuleClassifier) -> None:
    _require_quick_text()
    import io

    pytest.importorskip("rapidocr")
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (700, 820), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    lines = ["CORNER CAFE", "CASHIER: ANNA", "2 LATTE 7.00", "TOTAL 7.00", "CASH 10.00", "CHANGE 3.00"]
    for i, line in enumerate([*lines, "THANK YOU"]):
        draw.text((40, 40 + i * 100), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    data = buffer.getvalue()
    result = clf.classify(data, _raw("IMG_2031.png", "image/png", data))
    assert result.doc_type == "receipt", result.reasoning
    assert "by OCR" in result.reasoning
    no_ocr = RuleClassifier(clf.rules, ocr=False).classify(data, _raw("IMG_2031.png", "image/png", data))
    assert no_ocr.doc_type == "other"  # without OCR a photo with a neutral name gives no evidence


def test_ocr_first_page_ignores_formats_with_text() -> None:
    from docflow.backends.classify.local import ocr_first_page

    assert ocr_first_page(b"hello", "text/plain") == ""
    assert ocr_first_page(b"not an image", "image/png") == ""  # a failure leaves the file name as evidence
