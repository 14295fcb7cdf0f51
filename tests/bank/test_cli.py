"""`sahayak bank …` commands against a real SQLite bank in a fresh SAHAYAK_HOME."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from app.bank.service import BankService
from app.cli import root
from app.conversation.support import SupportStore

runner = CliRunner(env={"COLUMNS": "200"})


def test_seed_show_reset(fresh_home: Path) -> None:
    first = runner.invoke(root, ["bank", "seed"])
    assert first.exit_code == 0, first.output
    assert "customers +4" in first.output and (fresh_home / "bank.db").exists()
    again = runner.invoke(root, ["bank", "seed"])
    assert again.exit_code == 0 and "customers +0" in again.output

    shown = runner.invoke(root, ["bank", "show", "--user", "asha"])
    assert shown.exit_code == 0, shown.output
    assert "Asha Menon" in shown.output and "XXXXXXXX7781" in shown.output and "₹1,25,000.00" in shown.output
    assert "501000427781" not in shown.output  # full account numbers are never printed

    bank = BankService()
    asha = bank.get_customer("asha")
    bank.transfer(asha.id, "savings", bank.resolve_beneficiary(asha.id, "mom").id, Decimal("500"), "cli-1")
    assert "TXN" in runner.invoke(root, ["bank", "show", "--user", "asha"]).output

    refused = runner.invoke(root, ["bank", "reset"], input="n\n")
    assert refused.exit_code != 0
    assert bank.resolve_account(asha.id).balance == Decimal("124500.00")
    done = runner.invoke(root, ["bank", "reset", "--yes"])
    assert done.exit_code == 0, done.output
    asha = bank.get_customer("asha")
    assert bank.resolve_account(asha.id).balance == Decimal("125000.00")


def test_branches_handoffs_sms(fresh_home: Path) -> None:
    assert runner.invoke(root, ["bank", "seed"]).exit_code == 0
    out = runner.invoke(root, ["bank", "branches", "411057"])
    assert out.exit_code == 0 and "Hinjewadi" in out.output
    bank = BankService()
    ref = SupportStore(bank.db).create_handoff("s-cli", "ravi", "wants a human", "…")
    assert ref in runner.invoke(root, ["bank", "handoffs"]).output
    assert "no SMS sent yet" in runner.invoke(root, ["bank", "sms"]).output
    bank.issue_otp(bank.get_customer("ravi").id, "transfer", "k")
    sms = runner.invoke(root, ["bank", "sms", "--last", "1"]).output
    assert "+91XXXXXX5678" in sms and "Sahayak OTP" in sms
