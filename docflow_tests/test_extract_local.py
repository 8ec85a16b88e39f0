import csv
import json
from pathlib import Path

import pytest

from docflow.backends.extract.local import LocalExtractor, Template, load_templates
from docflow.errors import ConfigError
from docflow.models import Classification, Extraction, ParsedDocument, Span
from docflow.settings import Settings, data_dir

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev"


def run(text: str, doc_type: str, extractor: LocalExtractor | None = None) -> Extraction:
    parsed = ParsedDocument(markdown=text, text=text, parser="test")
    classification = Classification(doc_type=doc_type, confidence=0.9, reasoning="test", backend="test")
    return (extractor or LocalExtractor()).extract(parsed, classification)


INVOICE = """\
Brightwater Consulting GmbH
Hafenstraße 12, 20457 Hamburg
Bill to:
Northwind Traders Ltd
1 Market Street, London
INVOICE
Invoice No.: RE-2024-0042
Invoice date: 05.02.2024
Due date: 19.02.2024
Description Qty Unit price Amount
Data pipeline review 4 150,00 € 600,00 €
Workshop 1 400,00 € 400,00 €
Subtotal 1.000,00 €
VAT 19% 190,00 €
Total 1.190,00 €
"""


def test_invoice_fields() -> None:
    result = run(INVOICE, "invoice")
    assert result.validation_errors == []
    assert result.schema_name == "Invoice"
    assert result.backend == "local/heuristics"
    f = result.fields
    assert f["invoice_number"] == "RE-2024-0042"
    assert f["vendor_name"] == "Brightwater Consulting GmbH"
    assert f["invoice_date"] == "2024-02-05"
    assert f["due_date"] == "2024-02-19"
    assert f["total_amount"] == 1190.0
    assert f["currency"] == "EUR"
    assert f["tax_rate"] == 19.0
    assert f["tax_amount"] == 190.0
    assert [item["amount"] for item in f["line_items"]] == [600.0, 400.0]
    assert result.field_confidence["invoice_number"] == pytest.approx(0.9)
    assert set(result.field_confidence) <= set(f)


def test_invoice_values_in_a_column_next_to_labels_and_us_dates() -> None:
    text = """\
Lumen Labs, Inc.
500 Howard St, San Francisco, CA
Invoice Number:
Invoice Date:
Due Date:
LL-7781
03/04/2024
04/03/2024
Item Qty Rate Amount
Hosting 1 $80.00 $80.00
Subtotal $80.00
Total $80.00
Amount Due $80.00
"""
    f = run(text, "invoice").fields
    assert f["invoice_number"] == "LL-7781"
    assert f["invoice_date"] == "2024-03-04"  # USD: month first
    assert f["due_date"] == "2024-04-03"
    assert f["vendor_name"] == "Lumen Labs, Inc."
    assert f["total_amount"] == 80.0
    assert f["currency"] == "USD"
    assert f["tax_rate"] == 0.0  # subtotal equals total


def test_receipt_fields() -> None:
    text = """\
Corner Bakery Ltd
12 High Street
Bristol BS1 4DJ
Tel: 0117 000 0000
Date: 14/03/2024 10:21
Croissant 2 x 1.80 3.60
TOTAL £ 5.40
Paid by: Card
"""
    result = run(text, "receipt")
    assert result.validation_errors == []
    f = result.fields
    assert f["store_name"] == "Corner Bakery Ltd"
    assert f["date"] == "2024-03-14"
    assert f["total"] == 5.4
    assert f["currency"] == "GBP"
    assert f["address"] == "12 High Street, Bristol BS1 4DJ"
    assert f["payment_method"] == "Card"


CONTRACT = """\
SOFTWARE LICENSE AGREEMENT
This Software License Agreement (the "Agreement") is dated as of March 1, 2020, by and between
Alpha Widgets Inc., a Delaware corporation ("Licensor"), and Beta Tools LLC, a Texas limited
liability company ("Licensee").
WHEREAS, Licensor owns certain software.
1. Grant. Licensor grants Licensee a non-exclusive license.
2. Term. The term of this Agreement shall commence on the Effective Date and shall expire on
February 28, 2023, unless terminated earlier.
3. Notices. Notices shall be in writing.
4. Governing Law. This Agreement shall be governed by and construed in accordance with the laws of
the State of Delaware.
"""


def test_contract_fields() -> None:
    f = run(CONTRACT, "contract").fields
    assert f["title"] == "SOFTWARE LICENSE AGREEMENT"
    assert set(f["parties"]) == {"Alpha Widgets Inc.", "Licensor", "Beta Tools LLC", "Licensee"}
    assert f["agreement_date"] == "2020-03-01"
    assert f["effective_date"] == "2020-03-01"
    assert f["expiration_date"].startswith("The term of this Agreement shall commence")
    assert f["expiration_date"].endswith("unless terminated earlier.")
    assert f["governing_law"] == (
        "This Agreement shall be governed by and construed in accordance with the laws of the State of "
        "Delaware."
    )


def test_resume_fields() -> None:
    text = """\
Jane Q. Doe  jane.doe@example.org
Mobile: +44 7700 900123 | github.com/janedoe
Experience
Data Engineer, Example Corp 2019 – 2024
Skills
Languages: Python, SQL, Rust
Tools: Dagster, Postgres
Education
MSc Computer Science, 2018
"""
    f = run(text, "resume").fields
    assert f["name"] == "Jane Q. Doe"
    assert f["email"] == "jane.doe@example.org"
    assert f["phone"] == "+44 7700 900123"
    assert f["skills"] == ["Python", "SQL", "Rust", "Dagster", "Postgres"]


def test_financial_revenue_lines() -> None:
    text = "Income statement\n(€ in millions)\n2023 2022\nRevenue 1,250 1,100\nEBIT 300 250\n"
    f = run(text, "financial_statement").fields
    assert f["revenue"] == [
        {"value": 1250.0, "unit": "millions", "currency": "EUR", "period_end": "2023-12-31"},
        {"value": 1100.0, "unit": "millions", "currency": "EUR", "period_end": "2022-12-31"},
    ]


def test_other_types_get_key_values() -> None:
    result = run("Name: Ada Lovelace\nDate: 1843\nTopic: engines\nTopic: notes\n", "form")
    assert result.schema_name == "KeyValues"
    assert result.fields["key_values"] == {
        "Name": "Ada Lovelace",
        "Date": "1843",
        "Topic": ["engines", "notes"],
    }


def test_invalid_value_goes_to_validation_errors() -> None:
    result = run("Invoice number: 77-1\nVAT 150% 3.00 €\nTotal 5,00 €\n", "invoice")
    assert result.fields["invoice_number"] == "77-1"
    assert "tax_rate" not in result.fields
    assert any(e.startswith("tax_rate") for e in result.validation_errors)


def test_empty_document_yields_no_fields() -> None:
    result = run("", "invoice")
    assert result.fields == {}
    assert result.validation_errors == []


# --- templates -----------------------------------------------------------------------------------------


def test_shipped_templates_load_and_apply() -> None:
    extractor = LocalExtractor.from_settings(Settings())
    assert [t.name for t in extractor.templates] == [
        p.stem for p in sorted((data_dir() / "templates").glob("*.yaml"))
    ]
    text = "ACME Widgets Ltd\nRemittance ref: AW-1001\nIssued: 02/03/2024\nPlease pay: 1.234,50\n"
    result = run(text, "invoice", extractor)
    assert result.fields["vendor_name"] == "ACME Widgets Ltd"
    assert result.fields["invoice_number"] == "AW-1001"
    assert result.fields["invoice_date"] == "2024-03-02"
    assert result.fields["total_amount"] == 1234.5
    assert result.fields["currency"] == "GBP"
    assert result.field_confidence["invoice_number"] == pytest.approx(0.95)
    # the template is for invoices only and needs all its keywords
    assert "invoice_number" not in run("ACME Widgets Ltd\nhello", "invoice", extractor).fields


def test_template_capture_that_does_not_validate_is_reported() -> None:
    template = Template(name="t", keywords=["Foo"], fields={"currency": r"Currency:\s*(\w+)"})
    result = run("Foo\nCurrency: Dollarz\nTotal 5.00\n", "invoice", LocalExtractor([template]))
    assert "currency" not in result.fields
    assert any(e.startswith("currency") for e in result.validation_errors)


def test_broken_template_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("keywords: ['(unclosed']\nfields: {}\n")
    with pytest.raises(ConfigError):
        load_templates(tmp_path)


# --- dev set -------------------------------------------------------------------------------------------


def _dev_text(path: Path) -> str:
    if path.suffix != ".pdf":
        return path.read_text(errors="replace")
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()


def _matches(truth: object, got: object) -> bool:
    import difflib
    import re

    if got is None:
        return False
    if isinstance(truth, int | float):
        return isinstance(got, int | float) and abs(got - truth) <= 0.01
    a, b = (re.sub(r"\s+", " ", str(x)).strip().lower() for x in (truth, got))
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.85


@pytest.mark.skipif(not (DEV / "manifest.csv").exists(), reason="eval dev set absent")
def test_dev_invoice2data_accuracy() -> None:
    """Measured 35/42 scored fields (0.83) on the invoice2data dev invoices; keep it above 0.75."""
    with (DEV / "manifest.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if "/invoice2data/" in r["path"]]
    hits = total = 0
    for row in rows:
        truth = json.loads((DEV / row["truth_path"]).read_text())["fields"]
        fields = run(_dev_text(DEV / row["path"]), row["doc_type"]).fields
        for name, value in truth.items():
            total += 1
            hits += _matches(value, fields.get(name))
    assert total >= 30
    assert hits / total >= 0.75, f"{hits}/{total}"


# --- issuer (vendor/store) cues --------------------------------------------------------------------------


def test_vendor_from_a_seller_block_trimmed_to_the_name_its_domain_spells() -> None:
    text = """Printout: www.billmaker.example.pl
VAT Invoice no. 12/2024
Seller:

BrightLoop Jan Kowalski Krakow 12
30-001 Krakow
jan@brightloopdev.io

Buyer:

Northwind Traders GmbH
Berlin
Total: 100.00 EUR
"""
    assert run(text, "invoice").fields["vendor_name"] == "BrightLoop"


def test_vendor_outside_the_buyer_paragraph_of_a_two_column_header() -> None:
    text = """BILLED TO:  SERVICE PROVIDED BY:

Jane Roe
Globex Analytics GmbH Hauptstr. 1
Berlin
jane@globex.de

Quillsoft Inc.
www.quillsoft.com
1 Main St, Boston

INVOICE: 7781
TOTAL 50.00
"""
    f = run(text, "invoice").fields
    assert f["vendor_name"] == "Quillsoft Inc."


def test_vendor_spelled_by_the_web_domain_when_no_legal_name_is_written() -> None:
    text = """Invoice INV/2024/0001
Description Amount
Chairs $ 100.00
Total $ 100.00
Powered by PDFKit (www.pdfkit.org)
Premium Supplier Harbor Furniture
12 Dock Road, Fremont CA
(555)-000-0000 sales@example.com http://www.harbor-furniture.com
"""
    assert run(text, "invoice").fields["vendor_name"] == "Harbor Furniture"


def test_a_legal_name_matching_a_domain_beats_an_earlier_legal_name() -> None:
    text = """Acme Holdings Ltd
Invoice 55
Thanks for buying from Zephyr Tools LLC
support@zephyrtools.com
Total 10.00
"""
    assert run(text, "invoice").fields["vendor_name"] == "Zephyr Tools LLC"


def test_vendor_named_in_the_title_line() -> None:
    text = "12.05.24  Invoice | Orbit Planner\n11/5/24\nGlobex\nInvoice ID #4hx\nTotal $48.00\n"
    assert run(text, "invoice").fields["vendor_name"] == "Orbit Planner"


def test_values_printed_as_one_row_next_to_a_column_of_labels() -> None:
    text = """Invoice
Widgets Ltd
Notes:  Subtotal:
Tax:
Total:
Balance:

75.87 0.00 75.87 0.00
"""
    f = run(text, "invoice").fields
    assert f["total_amount"] == 75.87


# --- till receipts -----------------------------------------------------------------------------------------

TILL = """KEDAI MAJU JAYA SDN BHD
(123456-X)
NO 12, JALAN PERDANA 3
43000 KAJANG
GST REG NO: 000123456789
TAX INVOICE
DATE: 14/03/2018 10:21
CASHIER: AMIN
MINERAL WATER 2 1.50 3.00
BREAD 1 3.60 3.60
TOTAL QTY: 3
TOTAL (RM): 6.60
CASH 10.00
CHANGE 3.40
"""


def test_till_receipt_fields() -> None:
    f = run(TILL, "receipt").fields
    assert f["store_name"] == "KEDAI MAJU JAYA SDN BHD"
    assert f["date"] == "2018-03-14"
    assert f["total"] == 6.6  # not the item count of "TOTAL QTY"
    assert f["currency"] == "MYR"
    assert f["address"] == "NO 12, JALAN PERDANA 3, 43000 KAJANG"  # the registration number left out


def test_till_receipt_total_is_cash_minus_change_when_no_total_is_labelled() -> None:
    text = "SANTO BAKERY\nDATE 01/02/2019\nBUN 2 x 1.20 2.40\nCASH 5.00\nCHANGE 2.60\n"
    assert run(text, "receipt").fields["total"] == 2.4


def test_legal_names_with_a_branch_mark_between_legal_words() -> None:
    from docflow.backends.extract.local import company_name

    assert company_name("MEGA MART CO. (M) BHD. 123 Jalan Besar") == "MEGA MART CO. (M) BHD."
    assert company_name("Lion City Trading Pte Ltd") == "Lion City Trading Pte Ltd"


# --- contract dates in words ----------------------------------------------------------------------------


def test_contract_dated_as_of_an_event_keeps_the_words() -> None:
    text = """SUPPLY AGREEMENT
THIS SUPPLY AGREEMENT (this "Agreement") is made and effective as of the date of the Closing (as
defined in the Purchase Agreement) (the "Effective Date"), between Alpha Corp., a Delaware
corporation ("Alpha"), and Beta LLC ("Beta").
RECITALS
A. Alpha and Beta entered into a Purchase Agreement dated March 3, 2019.
"""
    f = run(text, "contract").fields
    assert f["agreement_date"] == "the date of the Closing"  # not the date of the agreement it cites
    assert f["effective_date"] == "the date of the Closing"


def test_contract_with_a_blank_date_keeps_the_template_words() -> None:
    text = """LICENSE AGREEMENT
This LICENSE AGREEMENT (the "Agreement") is effective as of the [__] day of [__], 2021 ("Effective
Date") between Gamma Inc. ("Licensor") and Delta Ltd. ("Licensee").
"""
    f = run(text, "contract").fields
    assert f["agreement_date"] == "the [__] day of [__], 2021"
    assert f["effective_date"] == "the [__] day of [__], 2021"


# --- fine print, payee, unlabelled dates --------------- ------------------------------------------------


def test_vendor_goes_by_its_name_rather_than_the_registered_one_of_the_fine_print() -> None:
    text = """Jean Dupont
12 rue des Lilas
Facture n°1234 du 02 mars 2024
Abonnement Libra Box  19.99
Total TTC  19.99 €
Questions: www.libra.fr/aide
Libra Service Clients 75000 Paris
Libra SAS au capital de 1.000.000 Euros - RCS Paris 123 456 789 - Siège social: 8 rue X, Paris
"""
    assert run(text, "invoice").fields["vendor_name"] == "Libra"


def test_vendor_from_the_fine_print_when_it_is_the_only_name() -> None:
    text = """Invoice 2024-17
Consulting  500.00
Total  500.00 GBP
Harwick Analytics Limited, registered in England no. 01234567, registered office: 1 Lane, Leeds
"""
    assert run(text, "invoice").fields["vendor_name"] == "Harwick Analytics Limited"


def test_vendor_is_the_payee_when_nothing_else_names_it() -> None:
    text = """PAYMENT ADVICE
Amount  Rs 1939
Total  Rs 1939
All payments to be made in favour of Oravel Stays Pvt. Ltd.
"""
    assert run(text, "invoice").fields["vendor_name"] == "Oravel Stays Pvt. Ltd"


def test_vendor_written_next_to_its_email_address_at_the_top() -> None:
    text = "INVOICE\nSammy Rivers sammy@example.com\nBill To:\nTaylor Reed\nTotal: $10.00\n"
    assert run(text, "invoice").fields["vendor_name"] == "Sammy Rivers"


def test_issue_date_from_a_place_and_date_line_not_the_delivery_date() -> None:
    text = """Brightwater GmbH
Kunde: Globex AG
Lieferdatum,  30.06.2023
Rechnung
Hamburg  04.07.2023
Rechnungs-Nr  02581
Leistungszeitraum 01.06.2023 - 30.06.2023
Gesamtbetrag  119,00 €
"""
    assert run(text, "invoice").fields["invoice_date"] == "2023-07-04"


def test_unlabelled_issue_date_skips_other_dates_and_ranges() -> None:
    text = """Acme Tools Ltd
Delivery 30.06.2023 to the warehouse, service 01.06.2023 - 30.06.2023
Issued in Hamburg on 02.07.2023 with our thanks for your business.
Total  119,00 €
"""
    assert run(text, "invoice").fields["invoice_date"] == "2023-07-02"


def test_day_order_follows_the_unambiguous_dates_of_the_document() -> None:
    text = "Invoice 77\nDate: 04/05/2023\nService 28/04/2023\nTotal $ 10.00\n"
    assert run(text, "invoice").fields["invoice_date"] == "2023-05-04"  # dollars, but written day first
    us = "Invoice 77\nDate: 04/05/2023\nService 04/28/2023\nTotal $ 10.00\n"
    assert run(us, "invoice").fields["invoice_date"] == "2023-04-05"


# --- receipts read by their layout (OCR text boxes) ---------------------------------------------------------


def run_spans(boxes: list[tuple[str, float, float, float, float]], doc_type: str = "receipt") -> Extraction:
    """A photographed receipt: text boxes (text, x0, y0, x1, y1) in page fractions, as OCR returns them."""
    spans = [Span(page=1, text=t, x0=x0, y0=y0, x1=x1, y1=y1, ocr=True) for t, x0, y0, x1, y1 in boxes]
    text = "\n".join(s.text for s in spans)
    parsed = ParsedDocument(markdown=text, text=text, parser="test", spans=spans)
    classification = Classification(doc_type=doc_type, confidence=0.9, reasoning="test", backend="test")
    return LocalExtractor().extract(parsed, classification)


# a tilted photo: the values of the right column sit a little higher than their labels
PHOTO = [
    ("ali 0312", 0.05, 0.02, 0.30, 0.05),  # handwriting / a stamp above the print
    ("KEDAI RUNCIT MAJU", 0.20, 0.08, 0.80, 0.12),
    ("SENTOSA SDN BHD (884120-K)", 0.15, 0.12, 0.85, 0.155),
    ("NO 7, JALAN MAWAR 2,", 0.20, 0.16, 0.80, 0.185),
    ("TAMAN MAWAR, 43000 KAJANG", 0.18, 0.19, 0.82, 0.215),
    ("TEL: 03-8734 1111", 0.30, 0.22, 0.70, 0.245),
    ("GST ID: 000123456789", 0.25, 0.25, 0.75, 0.275),
    ("TAX INVOICE", 0.35, 0.29, 0.65, 0.315),
    ("23-01-201913:14:15", 0.05, 0.33, 0.50, 0.355),
    ("BREAD", 0.05, 0.40, 0.30, 0.425),
    ("4.20", 0.80, 0.397, 0.92, 0.422),
    ("SUB TOTAL", 0.40, 0.45, 0.70, 0.475),
    ("4.20", 0.80, 0.447, 0.92, 0.472),
    ("TOTAL (RM)", 0.40, 0.48, 0.70, 0.505),
    ("4.20", 0.80, 0.477, 0.92, 0.502),
    ("CASH", 0.40, 0.51, 0.70, 0.535),
    ("50.00", 0.80, 0.507, 0.92, 0.532),
    ("CHANGE", 0.40, 0.54, 0.70, 0.565),
    ("45.80", 0.80, 0.537, 0.92, 0.562),
]


def test_receipt_from_text_boxes_store_address_date_total() -> None:
    f = run_spans(PHOTO).fields
    # the two prominent lines at the top, without the handwriting above nor the registration number
    assert f["store_name"] == "KEDAI RUNCIT MAJU SENTOSA SDN BHD"
    assert f["address"] == "NO 7, JALAN MAWAR 2, TAMAN MAWAR, 43000 KAJANG"  # up to the phone line
    assert f["date"] == "2019-01-23"  # the time glued to the year by OCR
    assert f["total"] == 4.2  # not the cash tendered (50.00) nor the change
    assert f["currency"] == "MYR"  # no currency sign: a Malaysian company form says ringgit


def test_receipt_merchant_is_the_top_line_not_a_later_company() -> None:
    boxes = [
        ("MINI MARKET SRI JAYA", 0.2, 0.05, 0.8, 0.09),
        ("12, JALAN BESAR", 0.25, 0.10, 0.75, 0.13),
        ("TEL: 03-4043 7678", 0.25, 0.14, 0.75, 0.17),
        ("OWNED BY GLOBAL FOODS SDN BHD", 0.05, 0.18, 0.80, 0.21),
        ("DATE: 02/03/2018", 0.05, 0.24, 0.50, 0.27),
        ("TOTAL", 0.40, 0.40, 0.60, 0.43),
        ("9.90", 0.80, 0.40, 0.92, 0.43),
    ]
    f = run_spans(boxes).fields
    # the name the shop goes by, at the top, not its owner's legal name printed under the address
    assert f["store_name"] == "MINI MARKET SRI JAYA"
    assert f["address"] == "12, JALAN BESAR"


def test_receipt_total_is_the_largest_amount_after_a_total_label() -> None:
    text = """ACME STORES SDN BHD
NO 1, JALAN SATU
GST REG NO 000987654321
DATE 05/06/2018
ITEM A 1 10.00 10.00
SUBTOTAL 100.00
TOTAL QTY 3
TOTAL SALES (EXCLUDING GST) 94.34
TOTAL GST 5.66
ROUNDING ADJ 0.01
TOTAL INCL. GST 99.99
NETT TOTAL 100.00
CASH 200.00
CHANGE 100.00
GST SUMMARY AMOUNT TAX
TOTAL 120000.00 7200.00
"""
    f = run(text, "receipt").fields
    # not the subtotal, the count, the amount before tax, the cash, the change, nor the tax summary
    assert f["total"] == 100.0
    assert f["date"] == "2018-06-05"  # day first: ringgit, nothing says otherwise


def test_receipt_total_on_the_row_under_its_label_and_ocr_zeros() -> None:
    text = "KEDAI ABC\nDATE 01/02/2019\nGRAND TOTAL\nRM 12.5O\nCASH 20.00\n"
    assert run(text, "receipt").fields["total"] == 12.5
    text = "KEDAI ABC\nDATE 01/02/2019\nTOTAL  RM5:OO\nCASH  RM5.00\n"
    assert run(text, "receipt").fields["total"] == 5.0


def test_receipt_date_day_first_unless_the_document_says_otherwise() -> None:
    base = "CORNER SHOP\n{date}\nTOTAL {amount}\n"
    assert run(base.format(date="03/04/2019", amount="RM 3.00"), "receipt").fields["date"] == "2019-04-03"
    # dollars and a date that can only be month first: month first for the ambiguous one too
    us = "CORNER SHOP\n03/04/2019\nRefund by 04/28/2019\nTOTAL $3.00\n"
    assert run(us, "receipt").fields["date"] == "2019-03-04"
    assert run(base.format(date="17 MAR 2018", amount="3.00"), "receipt").fields["date"] == "2018-03-17"


# --- form key/values from the layout (text boxes) -------------------------------------------------------


def _form(*boxes: tuple[str, float, float, float, float]) -> dict:
    """Key/values of a one-page form made of OCR boxes (text, x0, y0, x1, y1 in page fractions)."""
    spans = [Span(page=1, text=t, x0=x0, y0=y0, x1=x1, y1=y1, ocr=True) for t, x0, y0, x1, y1 in boxes]
    text = "\n".join(s.text for s in spans)
    parsed = ParsedDocument(markdown=text, text=text, parser="test", spans=spans)
    classification = Classification(doc_type="form", confidence=0.9, reasoning="test", backend="test")
    return LocalExtractor().extract(parsed, classification).fields.get("key_values", {})


def test_form_answer_right_of_its_label_on_the_row() -> None:
    kv = _form(
        ("COUNTRY:", 0.08, 0.30, 0.16, 0.32),
        ("BELGIUM", 0.25, 0.30, 0.33, 0.32),
        ("PRODUCT:", 0.08, 0.33, 0.16, 0.35),
        ("LUCKY STRIKE Filter", 0.25, 0.33, 0.45, 0.35),
        ("Project Code", 0.07, 0.40, 0.20, 0.42),  # no colon: a caption with its answer close on its right
        ("CST-N-68", 0.22, 0.40, 0.31, 0.42),
    )
    assert kv == {"COUNTRY": "BELGIUM", "PRODUCT": "LUCKY STRIKE Filter", "Project Code": "CST-N-68"}


def test_form_answer_below_its_label_over_several_lines() -> None:
    kv = _form(
        ("NATURE OF WORK:", 0.08, 0.38, 0.23, 0.40),
        ("Advise if the honey is", 0.22, 0.41, 0.69, 0.43),
        ("an acceptable substitute.", 0.22, 0.43, 0.69, 0.45),
        ("COMMENTS:", 0.08, 0.46, 0.21, 0.48),  # the next label ends the answer
        ("OK", 0.42, 0.46, 0.47, 0.48),
    )
    assert kv == {"NATURE OF WORK": "Advise if the honey is an acceptable substitute.", "COMMENTS": "OK"}


def test_form_header_row_of_captions_each_over_its_answer() -> None:
    kv = _form(
        ("Fax Number", 0.34, 0.26, 0.43, 0.28),
        ("Voice Number", 0.60, 0.26, 0.70, 0.28),
        ("910-335-7077", 0.34, 0.28, 0.45, 0.30),
        ("910-335-7720", 0.60, 0.285, 0.72, 0.30),
    )
    assert kv == {"Fax Number": "910-335-7077", "Voice Number": "910-335-7720"}


def test_form_key_and_answer_in_one_box() -> None:
    kv = _form(
        ("Date: 12/1/98", 0.07, 0.07, 0.19, 0.09),
        ("Project Name_ Charcoal Smoking Tobacco", 0.07, 0.20, 0.46, 0.22),
        ("Meeting at 10:30 in room 4", 0.07, 0.30, 0.40, 0.32),  # a time is not a key and its answer
    )
    assert kv == {"Date": "12/1/98", "Project Name": "Charcoal Smoking Tobacco"}


def test_form_label_without_answer_and_noise_left_out() -> None:
    kv = _form(
        ("BY:", 0.07, 0.55, 0.11, 0.57),
        ("☐", 0.30, 0.55, 0.32, 0.57),  # an empty checkbox is no answer
        ("______", 0.35, 0.55, 0.60, 0.57),
        ("JUDGE:", 0.07, 0.70, 0.12, 0.72),
        ("TRIAL DATE:", 0.07, 0.73, 0.15, 0.75),
        ("CASE TYPE:", 0.07, 0.80, 0.15, 0.82),
        ("Asbestos", 0.32, 0.80, 0.38, 0.82),
    )
    assert kv == {"CASE TYPE": "Asbestos"}


def test_form_enumerated_answer_is_a_list_and_two_line_label_is_one_key() -> None:
    kv = _form(
        ("PLAINTIFF'S", 0.15, 0.350, 0.25, 0.368),
        ("COUNSEL:", 0.15, 0.366, 0.24, 0.380),
        ("Wartnick, Chaber", 0.32, 0.365, 0.65, 0.381),
        ("101 California Street", 0.32, 0.382, 0.54, 0.398),
        ("NOTES:", 0.07, 0.62, 0.14, 0.64),
        ("a)", 0.24, 0.62, 0.26, 0.64),
        ("Nature of work should be specified.", 0.27, 0.62, 0.76, 0.64),
        ("b)", 0.24, 0.65, 0.26, 0.67),
        ("R&D should advise if", 0.27, 0.65, 0.72, 0.67),
        ("completion date cannot be met.", 0.27, 0.67, 0.72, 0.69),
    )
    assert kv == {
        "PLAINTIFF'S COUNSEL": "Wartnick, Chaber 101 California Street",
        "NOTES": [
            "a) Nature of work should be specified.",
            "b) R&D should advise if completion date cannot be met.",
        ],
    }


def test_form_without_boxes_still_reads_key_value_lines() -> None:
    kv = _form()
    assert kv == {}
    assert run("Name: Ada Lovelace\n", "form").fields["key_values"] == {"Name": "Ada Lovelace"}


@pytest.mark.skipif(not (DEV / "docs" / "funsd_forms").is_dir(), reason="dev eval set not present")
def test_dev_form_ocr_layout_pairs() -> None:
    """One real faxed form: OCR and the layout pairing end to end (the OCR is the slow part)."""
    from docflow.backends import get_parser
    from docflow.evaluation.compare import field_score
    from docflow.models import RawFile
    from docflow.sniff import sniff_content_type

    pytest.importorskip("rapidocr")
    path = DEV / "docs" / "funsd_forms" / "0000990274.png"
    truth = json.loads((DEV / "truth" / "funsd_forms" / "0000990274.json").read_text(encoding="utf-8"))
    data = path.read_bytes()
    content_type = sniff_content_type(data, path.name)
    raw = RawFile(doc_id="f", sha256="0", size=len(data), content_type=content_type, filename=path.name)
    parsed = get_parser(Settings()).parse(data, raw)
    classification = Classification(doc_type="form", confidence=0.9, reasoning="test", backend="test")
    kv = LocalExtractor().extract(parsed, classification).fields["key_values"]
    assert kv["COUNTRY"] == "BELGIUM"
    assert field_score(truth["fields"]["key_values"], kv) >= 0.4


# ======================================================================================================
# Born-digital layout (issue 17): revenue rows read under their period columns from the PDF text boxes,
# totals printed in two currencies, "2 @ $24.00" item rows, contract parties from the preamble sentence.


def run_boxes(boxes: list[tuple[str, float, float, float, float]], text: str, doc_type: str) -> Extraction:
    """A born-digital page: its text boxes (text, x0, y0, x1, y1) in page fractions and its plain text."""
    spans = [Span(page=1, text=t, x0=x0, y0=y0, x1=x1, y1=y1) for t, x0, y0, x1, y1 in boxes]
    parsed = ParsedDocument(markdown=text, text=text, parser="test", spans=spans)
    classification = Classification(doc_type=doc_type, confidence=0.9, reasoning="test", backend="test")
    return LocalExtractor().extract(parsed, classification)


# an income statement beside a second table: the plain text puts the labels and the figures on other lines
SIDE_BY_SIDE = [
    ("CONSOLIDATED INCOME STATEMENT", 0.08, 0.10, 0.40, 0.12),
    ("for the period from January 1 to December 31, 2020", 0.08, 0.13, 0.40, 0.15),
    ("EUR million", 0.08, 0.25, 0.13, 0.27),
    ("Note", 0.32, 0.25, 0.34, 0.27),
    ("2020", 0.39, 0.25, 0.41, 0.27),
    ("2019", 0.47, 0.25, 0.49, 0.27),
    ("EUR million", 0.52, 0.25, 0.56, 0.27),
    ("2020", 0.83, 0.25, 0.85, 0.27),
    ("2019", 0.91, 0.25, 0.93, 0.27),
    ("Revenue", 0.08, 0.32, 0.12, 0.33),
    ("G.01.", 0.32, 0.32, 0.34, 0.33),
    ("2,471.9", 0.39, 0.32, 0.41, 0.33),
    ("1,237.6", 0.47, 0.32, 0.49, 0.33),
    ("Items not reclassified to profit or loss:", 0.52, 0.32, 0.66, 0.33),
    ("Other income", 0.52, 0.35, 0.66, 0.36),
    ("48.2", 0.83, 0.35, 0.85, 0.36),
    ("27.4", 0.91, 0.35, 0.93, 0.36),
]
SIDE_BY_SIDE_TEXT = """CONSOLIDATED INCOME STATEMENT
for the period from January 1 to December 31, 2020
EUR million Revenue Cost of sales
2020 2,471.9 -1,977.8
2019 1,237.6 -926.4
"""


def test_revenue_figures_under_their_year_columns() -> None:
    f = run_boxes(SIDE_BY_SIDE, SIDE_BY_SIDE_TEXT, "financial_statement").fields
    assert [(r["value"], r["period_end"]) for r in f["revenue"]] == [
        (2471.9, "2020-12-31"),
        (1237.6, "2019-12-31"),
    ]
    assert {r["unit"] for r in f["revenue"]} == {"millions"}
    assert {r["currency"] for r in f["revenue"]} == {"EUR"}


# a key-figures table: a box holding the last year and a change heading, rows whose boxes overlap
# vertically (the label of the next row starts on the same band), a change column in percent
KEY_FIGURES = [
    ("in million euros", 0.24, 0.300, 0.29, 0.318),
    ("2019", 0.50, 0.300, 0.52, 0.318),
    ("2020", 0.55, 0.300, 0.57, 0.318),
    ("2021 2020-2021", 0.60, 0.300, 0.66, 0.318),
    ("Sales", 0.24, 0.325, 0.26, 0.353),
    ("20,114", 0.50, 0.325, 0.52, 0.353),
    ("19,250", 0.55, 0.325, 0.57, 0.353),
    ("20,066", 0.60, 0.325, 0.62, 0.353),
    ("4.2%", 0.64, 0.325, 0.66, 0.353),
    ("Further information", 0.80, 0.325, 0.90, 0.353),
    ("Operating profit (EBIT)", 0.24, 0.325, 0.32, 0.353),
    ("2,899", 0.50, 0.325, 0.52, 0.353),
    ("2,019", 0.55, 0.325, 0.57, 0.353),
    ("2,213", 0.60, 0.325, 0.62, 0.353),
]


def test_revenue_row_keeps_to_its_own_row_and_year_columns() -> None:
    text = "\n".join(t for t, *_ in KEY_FIGURES)
    f = run_boxes(KEY_FIGURES, text, "financial_statement").fields
    assert [(r["value"], r["period_end"]) for r in f["revenue"]] == [
        (20114.0, "2019-12-31"),
        (19250.0, "2020-12-31"),
        (20066.0, "2021-12-31"),
    ]


def test_revenue_quarter_and_half_year_columns_end_on_their_last_day() -> None:
    boxes = [
        ("Half-Year Financial Report as of June 30, 2019", 0.10, 0.02, 0.40, 0.04),
        ("€ million", 0.10, 0.31, 0.15, 0.33),
        ("Q2 2018", 0.58, 0.31, 0.63, 0.33),
        ("Q2 2019", 0.66, 0.31, 0.71, 0.33),
        ("H1 2018 H1 2019", 0.74, 0.31, 0.86, 0.33),
        ("Net sales", 0.10, 0.335, 0.16, 0.345),
        ("9,481", 0.60, 0.335, 0.62, 0.345),
        ("11,485", 0.67, 0.335, 0.70, 0.345),
        ("18,619", 0.745, 0.335, 0.78, 0.345),
        ("24,500", 0.82, 0.335, 0.857, 0.345),
    ]
    text = "\n".join(t for t, *_ in boxes)
    f = run_boxes(boxes, text, "financial_statement").fields
    assert [(r["value"], r["period_end"]) for r in f["revenue"]] == [
        (9481.0, "2018-06-30"),
        (11485.0, "2019-06-30"),
        (18619.0, "2018-06-30"),
        (24500.0, "2019-06-30"),
    ]


def test_invoice_total_in_the_payment_currency_column() -> None:
    text = """Example Software Inc.
BILLING METHOD: credit card PAYMENT CURRENCY: USD
INVOICE: #A77
PRODUCT
USD  EUR
PRO 1 month  119.95  109.15
VAT (19%)  0.00  0.00
TOTAL AT CHECKOUT  119.95  109.15
"""
    f = run(text, "invoice").fields
    assert f["currency"] == "USD"
    assert f["total_amount"] == 119.95


def test_invoice_item_rows_with_at_price_add_up_to_a_total_without_tax() -> None:
    text = """Example Planner
Invoice ID #4hrb48vz
Subscription details:
Managers  2 @ $24.00 $48.00
Subscription total:  $48.00
"""
    f = run(text, "invoice").fields
    assert f["line_items"][0]["amount"] == 48.0
    assert f["total_amount"] == 48.0
    assert f["tax_rate"] == 0.0  # the items make the total and no tax is mentioned


def test_contract_parties_from_the_preamble_not_the_cover_page() -> None:
    text = """FORM OF TRANSFER AND SERVICING AGREEMENT
among
NORTHWIND OWNER TRUST 2020-A, as Issuer,
NORTHWIND ABS LLC, as Depositor
and
ALPHA SERVICES LP, as Servicer
TRANSFER AND SERVICING AGREEMENT, dated as of January 29, 2020 (this "Agreement"), among NORTHWIND OWNER \
TRUST 2020-A, a Delaware statutory trust, as issuer (the "Issuer"), NORTHWIND ABS LLC, a Delaware limited \
liability company, as depositor (the "Depositor"), and Alpha Services LP, a Delaware limited partnership \
("Alpha"), as servicer (in such capacity, the "Servicer").
BACKGROUND
The Issuer will engage the Servicer to service the Receivables.
"""
    parties = run(text, "contract").fields["parties"]
    assert {"NORTHWIND OWNER TRUST 2020-A", "NORTHWIND ABS LLC", "Alpha Services LP"} <= set(parties)
    assert {"Issuer", "Depositor", "Servicer"} <= set(parties)
    assert not any("as Issuer" in p for p in parties)
