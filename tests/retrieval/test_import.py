"""`sahayak kb import`: a bank's Markdown, HTML, PDF and Q/A CSV become KB documents, re-imported
incrementally, with every skipped source named and its reason given; then searched for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.commands import kb as kb_commands
from retrieval.corpus import load_corpus
from retrieval.kb import open_knowledge_base

HTML = """<html><head><title>Debit card charges | Example Bank</title><script>var x = "not text";</script></head>
<body><nav>Home | Cards | Loans</nav><h1>Debit card charges</h1>
<p>These charges apply to all debit cards issued by Example Bank from 1 April 2026 onwards, for every account type.</p>
<table><tr><th>Service</th><th>Fee</th><th>GST</th></tr>
<tr><td>Card replacement</td><td>&#8377;250</td><td>18%</td></tr>
<tr><td>PIN regeneration</td><td>&#8377;0</td><td>none</td></tr></table>
<ul><li>Charges are debited from the linked account.</li><li>Waived for senior citizens.</li></ul>
<footer>Copyright Example Bank</footer></body></html>"""

MD = """---
title: Locker rent
url: https://bank.example/lockers
---
# Locker rent

Small lockers cost 1,500 rupees a year and large lockers 4,000 rupees a year, paid in advance every April.
"""

CSV = """question,answer,url
What is the minimum balance for a savings account?,"The minimum average monthly balance is 5,000 rupees in metro branches and 2,000 rupees in rural branches.",https://bank.example/faq#min
How do I stop a cheque?,"Use the stop-payment option in net banking or visit your branch; a stop payment costs 100 rupees per cheque.",
Is there an empty answer?,,
"""


def _pdf(text: str) -> bytes:
    """A one-page PDF whose text layer is ``text`` (built by hand: no PDF writer needed)."""
    stream = f"BT /F1 11 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture()
def sources(tmp_path: Path) -> Path:
    src = tmp_path / "bank-docs"
    src.mkdir()
    (src / "card-charges.html").write_text(HTML, encoding="utf-8")
    (src / "lockers.md").write_text(MD, encoding="utf-8")
    (src / "faq.csv").write_text(CSV, encoding="utf-8")
    (src / "fd-premature.pdf").write_bytes(_pdf("Premature withdrawal of a fixed deposit carries a penalty of one percent on the rate."))
    (src / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (src / "notes.docx").write_bytes(b"PK\x03\x04")
    return src


def _run(*args: str) -> dict:
    app = typer.Typer()
    kb_commands.register(app)
    result = CliRunner().invoke(app, ["kb", "import", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_import_converts_skips_with_reasons_reindexes_incrementally_and_answers(sources: Path, tmp_path: Path) -> None:
    corpus, index = tmp_path / "kb", tmp_path / "index"
    summary, stderr = _run(str(sources), "--into", str(corpus), "--index", str(index))
    assert sorted(summary["written"]) == ["card-charges", "faq-how-do-i-stop-a-cheque",
                                          "faq-what-is-the-minimum-balance-for-a-savings-account", "fd-premature", "lockers"]
    reasons = {Path(s["source"]).name: s["reason"] for s in summary["skipped"]}
    assert reasons["notes.docx"].startswith("unsupported file type .docx")
    assert reasons["broken.pdf"].startswith("could not read it:")
    assert reasons["faq.csv#line4"] == "no text to index"
    assert "skipped" in stderr and "notes.docx" in stderr
    assert summary["index"]["embedded"] == summary["index"]["n_chunks"] > 0

    docs = {d.doc_id: d for d in load_corpus(corpus)}
    html = docs["card-charges"]
    assert html.title == "Debit card charges | Example Bank" and "not text" not in html.text and "Home | Cards" not in html.text
    assert "| Card replacement | ₹250 | 18% |" in html.text  # the table stays a table
    assert docs["lockers"].meta["url"] == "https://bank.example/lockers"
    assert docs["faq-what-is-the-minimum-balance-for-a-savings-account"].meta["url"] == "https://bank.example/faq#min"
    assert "one percent" in docs["fd-premature"].text

    # Nothing changed: nothing rewritten, nothing re-embedded.
    again, _ = _run(str(sources), "--into", str(corpus), "--index", str(index))
    assert again["written"] == [] and len(again["unchanged"]) == 5 and again["index"]["embedded"] == 0
    # One CSV answer changed: only that document is rewritten, only its chunks are embedded again.
    (sources / "faq.csv").write_text(CSV.replace("100 rupees per cheque", "150 rupees per cheque"), encoding="utf-8")
    third, _ = _run(str(sources), "--into", str(corpus), "--index", str(index))
    assert third["written"] == ["faq-how-do-i-stop-a-cheque"]
    assert 0 < third["index"]["embedded"] < third["index"]["n_chunks"]

    kb = open_knowledge_base(index, mode="hybrid")
    top = kb.search("how much does a replacement debit card cost", k=1)[0]
    assert top.doc_id == "card-charges" and "Card replacement" in top.text and "₹250" in top.text
    assert kb.search("stop payment charge for a cheque", k=1)[0].doc_id == "faq-how-do-i-stop-a-cheque"


def test_import_refuses_a_missing_path(tmp_path: Path) -> None:
    app = typer.Typer()
    kb_commands.register(app)
    result = CliRunner().invoke(app, ["kb", "import", str(tmp_path / "nope"), "--into", str(tmp_path / "kb")])
    assert result.exit_code != 0 and "no such file or folder" in str(result.exception or result.output)
