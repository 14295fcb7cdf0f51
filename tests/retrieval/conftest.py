"""A small real corpus (copies of real KB documents) and its real index, shared by the retrieval tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["card-block", "card-unblock", "card-replace", "atm-free-transactions", "atm-withdrawal-limits",
         "pay-chat-transfer-limits", "pay-otp-rules", "pay-upi-limits", "pay-neft", "pay-rtgs",
         "dep-fd-rates", "dep-senior-citizen", "loan-home", "loan-gold", "loan-personal",
         "acc-minimum-balance", "complaint-raise", "fraud-phishing", "kyc-periodic-update", "branch-locker"]


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("kb-small")
    for name in SMALL:
        shutil.copy(ROOT / "data" / "kb" / f"{name}.md", d / f"{name}.md")
    return d


@pytest.fixture(scope="session")
def small_index(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from retrieval.index import build_index

    out = tmp_path_factory.mktemp("kb-index")
    build_index(small_corpus, out, progress=False)
    return out


@pytest.fixture(scope="session")
def small_kb(small_index: Path):
    from retrieval.kb import open_knowledge_base

    return open_knowledge_base(small_index, mode="hybrid")
