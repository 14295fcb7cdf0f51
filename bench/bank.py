"""Bank core latency and throughput on SQLite and PostgreSQL (loopback), as a JSON report.

Per backend, on a freshly seeded database:
  * baseline (same run): a balance read (``resolve_account``) — what any bank call costs;
  * one transfer (sequential), and a replay of an already completed transfer;
  * 8 threads × N transfers with distinct keys (throughput under write contention);
  * 50 threads retrying the same transfer (wall time; checks the money moved once).

    python bench/bank.py [--n 100] [--threads 8] [--no-postgres] [--out bench/results/bank.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN_URL = os.environ.get("SAHAYAK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def run_backend(url: str, n: int, threads: int) -> dict:
    from tqdm import tqdm

    from app.bank.seed import reseed
    from app.bank.service import BankService
    from app.core.settings import Settings

    reseed(url)
    # Limits high enough that the benchmark measures the machinery, not the refusals.
    bank = BankService(url, settings=Settings(daily_transfer_limit=Decimal("1e9"), per_transfer_limit=Decimal("1e6")))
    asha = bank.get_customer("asha")
    payee = bank.resolve_beneficiary(asha.id, "ravi")
    before = bank.resolve_account(asha.id, "current").balance

    reads = [timed(lambda: bank.resolve_account(asha.id, "savings")) for _ in range(n)]
    transfers, replays = [], []
    for i in tqdm(range(n), desc=f"transfers {url.split(':')[0]}", leave=False):
        key = f"seq-{i}"
        transfers.append(timed(lambda k=key: bank.transfer(asha.id, "current", payee.id, Decimal("1"), k)))
        replays.append(timed(lambda k=key: bank.transfer(asha.id, "current", payee.id, Decimal("1"), k)))

    def worker(t: int) -> None:
        for i in range(n // 2):
            bank.transfer(asha.id, "current", payee.id, Decimal("1"), f"par-{t}-{i}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(worker, range(threads)))
    parallel_s = time.perf_counter() - t0
    parallel_count = threads * (n // 2)

    barrier = threading.Barrier(50)

    def retry(_: int) -> bool:
        barrier.wait()
        return bank.transfer(asha.id, "current", payee.id, Decimal("7"), "same-key").replayed

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=50) as pool:
        replayed = list(pool.map(retry, range(50)))
    retries_ms = (time.perf_counter() - t0) * 1000
    after = bank.resolve_account(asha.id, "current").balance
    expected = before - Decimal(n + parallel_count) - Decimal("7")
    return {
        "baseline_balance_read_ms_p50": pct(reads, 0.5),
        "baseline_balance_read_ms_p95": pct(reads, 0.95),
        "transfer_ms_p50": pct(transfers, 0.5),
        "transfer_ms_p95": pct(transfers, 0.95),
        "replay_ms_p50": pct(replays, 0.5),
        "transfer_over_read_p50": round(statistics.median(transfers) / statistics.median(reads), 2),
        f"parallel_{threads}_threads_transfers_per_s": round(parallel_count / parallel_s, 1),
        "sequential_transfers_per_s": round(1000 / statistics.mean(transfers), 1),
        "same_key_50_threads_wall_ms": round(retries_ms, 1),
        "same_key_50_threads_executed": replayed.count(False),
        "balance_consistent": after == expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="sequential transfers (and reads) per backend")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="sahayak-bench-bank-"))
    os.environ["SAHAYAK_HOME"] = str(home)
    from app.bank.db import dispose_engines

    report: dict = {"benchmark": "bank_core", "n": args.n, "threads": args.threads, "cpus": os.cpu_count()}
    report["sqlite"] = run_backend(f"sqlite:///{home / 'bank.db'}", args.n, args.threads)
    if not args.no_postgres:
        import sqlalchemy as sa

        name = f"sahayak_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - report, don't crash the SQLite half
            report["postgres"] = {"error": f"PostgreSQL unavailable: {type(exc).__name__}"}
        else:
            try:
                report["postgres"] = run_backend(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", args.n, args.threads)
            finally:
                dispose_engines()
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
