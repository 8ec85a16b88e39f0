"""Regenerate data/samples/: small made-up documents of several types and formats (run by hand;
the outputs are committed). Needs reportlab: `pip install reportlab`."""

from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

OUT = Path(__file__).resolve().parent.parent / "data" / "samples"
STYLES = getSampleStyleSheet()


def pdf(name: str, flow: list) -> None:
    SimpleDocTemplate(str(OUT / name), pagesize=A4, title=name).build(flow)


def p(text: str, style: str = "Normal") -> Paragraph:
    return Paragraph(text, STYLES[style])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pdf(
        "invoice-northwind-2024-0042.pdf",
        [
            p("Northwind Traders Ltd", "Title"),
            p("12 Harbour Road, Bristol BS1 4QA, United Kingdom"),
            Spacer(1, 12),
            p("INVOICE", "Heading1"),
            p("Invoice number: INV-2024-0042"),
            p("Invoice date: 2024-03-14"),
            p("Due date: 2024-04-13"),
            p("Bill to: Contoso Analytics GmbH, Hauptstrasse 5, 10115 Berlin"),
            Spacer(1, 12),
            Table(
                [
                    ["Description", "Qty", "Unit price", "Amount"],
                    ["Data pipeline consulting (hours)", "12", "150.00", "1,800.00"],
                    ["Dagster training workshop", "1", "950.00", "950.00"],
                ]
            ),
            Spacer(1, 12),
            p("Subtotal: GBP 2,750.00"),
            p("VAT 20%: GBP 550.00"),
            p("Total due: GBP 3,300.00"),
            p("Payment terms: 30 days. Bank transfer to account 12345678, sort code 12-34-56."),
        ],
    )
    pdf(
        "services-agreement-acme.pdf",
        [
            p("MASTER SERVICES AGREEMENT", "Title"),
            p(
                'This Master Services Agreement (the "Agreement") is made and entered into as of '
                'January 5, 2024 (the "Effective Date") by and between Acme Robotics Inc., a Delaware '
                'corporation ("Provider"), and Globex Manufacturing LLC ("Customer").'
            ),
            p("WHEREAS, Customer wishes to engage Provider to perform maintenance services;"),
            p("1. Services", "Heading2"),
            p("Provider shall perform the services described in each Statement of Work."),
            p("2. Term and Termination", "Heading2"),
            p("This Agreement shall continue for a period of two (2) years from the Effective Date."),
            p("3. Governing Law", "Heading2"),
            p("This Agreement shall be governed by the laws of the State of New York."),
            p("IN WITNESS WHEREOF, the parties have executed this Agreement as of the Effective Date."),
        ],
    )
    pdf(
        "research-note-retrieval.pdf",
        [
            p("Hybrid Retrieval for Document Pipelines", "Title"),
            p("A. Researcher, B. Scientist — Institute of Information Systems"),
            p("Abstract", "Heading2"),
            p(
                "We study reciprocal rank fusion of dense and sparse retrieval over chunked business "
                "documents and find that fusion improves recall at five by eight points."
            ),
            p("1 Introduction", "Heading2"),
            p("Dense retrieval captures meaning while full-text search captures exact identifiers."),
            p("2 Method", "Heading2"),
            p("We chunk markdown by headings and embed each chunk with a small sentence encoder."),
            p("References", "Heading2"),
            p("[1] Cormack et al. Reciprocal rank fusion outperforms Condorcet. SIGIR 2009."),
        ],
    )


if __name__ == "__main__":
    main()
