"""Provenance benchmark: signing, verification, graph import, tamper detection, outage.

Prints one JSON report (last line). Each speed has a same-run baseline so numbers stay
comparable when other processes load the 2 shared cores (the load average is recorded):

* ``sign``: records/s through the real tracker (redact, pseudonymise, sign, chain, write,
  checkpoint) with Ed25519 and RSA-PSS-2048; baseline = the same pipeline with a no-op signer.
* ``verify``: records/s of ``verify_log`` in-process (``workers_1``) and with one signature
  worker per CPU (``workers_<n>``), checked to give identical reports; baseline = JSON parse +
  SHA-256 per line only.
* ``graph``: turns/s written over Bolt into the embedded ArcadeDB server by the batched writer
  vs the naive one-MERGE-per-node-and-relation baseline (same rows, separate ids, JVM warmed
  first, alternating rounds, medians), and end to end through the importer (read + verify +
  write); per CPU-second of client and server process together.
* every speed is also given per CPU-second (``*_per_cpu_s``): with other work on the two
  shared cores, wall-clock rates understate what one free core does.
* ``bytes_per_turn``: log bytes / turn records (checkpoints included).
* ``tamper``: detection rate and "right first line" rate over random tamper cases.
* ``outage``: stop the graph server mid-run, keep writing, restart; turns lost (must be 0).

    nice -n 10 .venv/bin/python bench/provenance.py [--turns 3000] [--graph-turns 2000] [--graph-rounds 3]
        [--no-graph] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.net import free_port  # noqa: E402 - after the sys.path line, like every bench script
from app.core.settings import get_settings, reset_settings  # noqa: E402
from app.ops.graph import start_graph_server  # noqa: E402
from privacy.redact import redact  # noqa: E402
from provenance.canonical import sha256_hex  # noqa: E402
from provenance.graph import (  # noqa: E402
    ContinuousImporter,
    Importer,
    Rows,
    add_record,
    driver,
    ensure_schema,
    write_rows,
    write_rows_naive,
)
from provenance.keys import Signer, generate_private, key_id_of  # noqa: E402
from provenance.merkle import Frontier  # noqa: E402
from provenance.records import GENESIS_HASH, base_record, seal  # noqa: E402
from provenance.tracker import Tracker  # noqa: E402
from provenance.verify import (  # noqa: E402
    PARALLEL_MIN_BYTES,
    _start_method,
    default_workers,
    trusted_keys,
    verify_log,
)


def _turn(i: int, session: str) -> dict:
    return dict(
        turn_id=f"bench-{i}", session_id=session, user_id="asha", channel="web",
        text=f"please send 2500 rupees to Ravi, my number is 98765 43210 ({i})",
        chatml=[{"role": "system", "content": "You are Sahayak"}, {"role": "user", "content": "send 2500"}],
        intent="Transfer_Money", confidence=0.5 + (i % 50) / 100, entities={"amount": {"value": 2500.0, "currency": "INR"}},
        handler="transfer_money", outcome="success", state="done", reply="Sent ₹2,500 to Ravi.",
        passages=[{"doc_id": "fees", "chunk_id": f"fees#{i % 7}", "chunk_hash": f"h{i % 7}",
                   "scores": {"bm25": 3.1, "dense": 0.7, "rerank": 0.9}}],
        scoring_request_id=None, latency_ms=40.0, model_versions={"intent": "intents@1"}, timestamp=None)


def _home(tmp: Path, name: str, **env: str):
    home = tmp / name
    os.environ["SAHAYAK_HOME"] = str(home)
    for k, v in env.items():
        os.environ[f"SAHAYAK_{k.upper()}"] = v
    reset_settings()
    return get_settings()


class _NoSign:
    key_id, alg = "nosign", "ed25519"

    def sign(self, data: bytes) -> bytes:
        return b"\0" * 64


def bench_sign(tmp: Path, n: int, alg: str, nosign: bool = False) -> dict:
    settings = _home(tmp, f"sign-{alg}-{nosign}", signing_algorithm=alg, checkpoint_every="100")
    t = Tracker(settings, redactor=redact)
    if nosign:
        t._writer._signer = _NoSign()  # the writer signs; replace its signer
    t.record_event("warmup")
    t.flush()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        t.record_turn(**_turn(i, f"s{i % 40}"))
    enqueue = time.perf_counter() - t0
    t.flush()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    t.close()
    size = sum(p.stat().st_size for p in settings.provenance_dir.glob("segment-*.jsonl"))
    return {"records": n, "seconds": round(dt, 3), "records_per_s": round(n / dt, 1),
            "records_per_cpu_s": round(n / cpu, 1), "enqueue_us_per_record": round(enqueue / n * 1e6, 2), "log_bytes": size,
            "folder": str(settings.provenance_dir), "settings": settings}


def bench_seal(tmp: Path, n: int, alg: str) -> dict:
    """The writer's core on one thread: sign + chain + Merkle leaf + append, over pre-built records
    (redaction and pseudonymisation excluded; they are measured end to end above)."""
    priv = generate_private(alg)
    signer = Signer(key_id_of(priv.public_key()), "ed25519" if alg == "ed25519" else "rsa-pss", priv)
    recs = []
    for i in range(n):
        r = base_record("turn")
        f = _turn(i, "s")
        r.update({k: v for k, v in f.items() if k not in ("chatml", "timestamp", "text", "session_id", "user_id")})
        r.update({"input": f["text"], "session": "s_x", "user": "u_x", "prompt_hash": "0" * 64})
        recs.append(r)

    def run(sig) -> float:
        fr, prev = Frontier(), GENESIS_HASH
        path = tmp / f"seal-{alg}-{sig.key_id}.jsonl"
        t0, c0 = time.perf_counter(), time.process_time()
        with open(path, "wb") as fh:
            for seq, r in enumerate(recs):
                line, prev, leaf = seal(r, seq, prev, sig)
                fr.append(leaf)
                fh.write(line.encode() + b"\n")
        return time.perf_counter() - t0, time.process_time() - c0

    dt, cpu = run(signer)
    base, base_cpu = run(_NoSign())
    return {"records": n, "records_per_s": round(n / dt, 1), "records_per_cpu_s": round(n / cpu, 1),
            "baseline_no_signature_per_s": round(n / base, 1),
            "baseline_no_signature_per_cpu_s": round(n / base_cpu, 1)}


def bench_verify(folder: Path, settings, repeats: int = 3) -> dict:
    """verify_log in-process (workers=1) and with one worker per CPU, beside a parse + hash
    baseline, all in this run; best of ``repeats`` wall times (other work shares the cores)."""
    keys = trusted_keys(settings)
    out: dict = {}
    reports = {}
    workers_all = default_workers()
    for label, workers in (("workers_1", 1), (f"workers_{workers_all}", workers_all)):
        best, cpu_best = None, None
        for _ in range(repeats):
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0, c0 = time.perf_counter(), time.process_time()
            v = verify_log(folder, keys=keys, workers=workers)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            kids2 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu += (kids2.ru_utime + kids2.ru_stime) - (kids.ru_utime + kids.ru_stime)  # worker processes
            best = dt if best is None else min(best, dt)
            cpu_best = cpu if cpu_best is None else min(cpu_best, cpu)
        reports[label] = json.dumps(v.report(), sort_keys=True)
        out[label] = {"records_per_s": round(v.lines / best, 1), "records_per_cpu_s": round(v.lines / cpu_best, 1),
                      "seconds": round(best, 3)}
    segs = sorted(folder.glob("segment-*.jsonl"))
    size = sum(p.stat().st_size for p in segs)
    base = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = 0
        for seg in segs:
            for line in seg.read_bytes().splitlines():
                env = json.loads(line)
                sha256_hex(env["signed_data"])
                n += 1
        dt = time.perf_counter() - t0
        base = dt if base is None else min(base, dt)
    method = _start_method()
    return out | {"records": v.lines, "ok": v.ok, "checkpoints_verified": v.checkpoints_verified,
                  "cpu_count": workers_all, "pool_start_method": method,
                  "parallel_used": workers_all > 1 and size >= PARALLEL_MIN_BYTES[method],
                  "reports_identical": len(set(reports.values())) == 1,
                  "baseline_parse_hash_per_s": round(n / base, 1),
                  "note": "records_per_cpu_s counts the worker processes too; wall times are best of "
                          f"{repeats}"}


def bench_tamper(folder: Path, settings, cases: int, rng: random.Random) -> dict:
    seg = sorted(folder.glob("segment-*.jsonl"))[0]
    lines = seg.read_bytes().split(b"\n")[:-1]
    lines = lines[:400]  # a prefix with its own checkpoints keeps each case fast
    detected = right_line = 0
    per_kind: dict[str, list[int]] = {}
    kinds = ["byte", "delete", "swap", "insert", "truncate"]
    for c in range(cases):
        kind = kinds[c % len(kinds)]
        L = list(lines)
        i = rng.randrange(1, len(L) - 2)
        expect = i + 1
        if kind == "byte":
            b = bytearray(L[i])
            start = b.find(b'"signed_data":"') + 16
            pos = rng.randrange(start, start + 200)
            b[pos] = b[pos] ^ 0x01 if chr(b[pos]).isalnum() else b[pos]
            if bytes(b) == L[i]:
                b[start + 2] ^= 0x01
            L[i] = bytes(b)
        elif kind == "delete":
            del L[i]
        elif kind == "swap":
            L[i], L[i + 1] = L[i + 1], L[i]
        elif kind == "insert":
            env = json.loads(L[i])
            inner = json.loads(env["signed_data"])
            inner["record"]["record_id"] = "f" * 32
            env["signed_data"] = json.dumps(inner, sort_keys=True, separators=(",", ":"))
            L.insert(i, json.dumps(env).encode())
        elif kind == "truncate":
            cut = rng.randrange(5, 60)
            raw = b"\n".join(L) + b"\n"
            L = None
            expect = len(lines)
        d = folder.parent / f"tamper-{c}"
        d.mkdir()
        (d / seg.name).write_bytes(b"\n".join(L) + b"\n" if L is not None else raw[:-cut])
        v = verify_log(d, settings=settings)
        shutil.rmtree(d)
        got = not v.ok
        right = got and v.failures[0].line == expect
        detected += got
        right_line += right
        per_kind.setdefault(kind, [0, 0, 0])
        per_kind[kind][0] += 1
        per_kind[kind][1] += got
        per_kind[kind][2] += right
    return {"cases": cases, "detected_pct": round(100 * detected / cases, 2),
            "right_line_pct": round(100 * right_line / cases, 2),
            "by_kind": {k: {"cases": a, "detected": b, "right_line": r} for k, (a, b, r) in per_kind.items()}}


def _rows(records, prefix: str):
    """Graph rows for the log's turns with turn and session ids prefixed (separate copies)."""
    rows, sessions = Rows(), {}
    for r in records:
        if r.type == "turn":
            rec = dict(r.record, turn_id=prefix + r.record["turn_id"], session=prefix + r.record["session"])
            add_record(rows, rec, r.seq, sessions)
    return rows


def _slices(rows, size: int):
    for j in range(0, len(rows.turns), size):
        ids = {t["id"] for t in rows.turns[j:j + size]}
        yield Rows(turns=rows.turns[j:j + size], generated=[g for g in rows.generated if g["t"] in ids],
                   retrieved=[x for x in rows.retrieved if x["t"] in ids], next=[x for x in rows.next if x["b"] in ids])


def _cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid``, from /proc."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return round(xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2, 1)


def bench_graph(tmp: Path, n: int, rounds: int = 3, warm_rounds: int = 3) -> dict:
    """Graph writes over Bolt into the embedded ArcadeDB server: the batched writer vs the naive
    one-MERGE-per-row baseline (alternating rounds on a warmed JVM, medians), then the importer
    end to end. Rates per wall second and per CPU second of client + server together."""
    port = free_port()
    settings = _home(tmp, "graph", neo4j_uri=f"bolt://127.0.0.1:{port}", checkpoint_every="100")
    t = Tracker(settings, redactor=redact)
    for i in range(n):
        t.record_turn(**_turn(i, f"s{i % 40}"))
    t.close()
    records = verify_log(settings.provenance_dir, settings=settings).records
    server = start_graph_server(settings, reuse=False, timeout=180)
    bench_outage.server = server
    out: dict = {"turns": n, "rounds": rounds, "batch_size": 500,
                 "packstream": "rust" if importlib.util.find_spec("neo4j._rust") else "python"}
    per: dict[str, dict[str, list[float]]] = {}

    def timed(key: str, fn) -> None:
        s0, c0, t0 = _cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        fn()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0 + _cpu_seconds(server.pid) - s0
        d = per.setdefault(key, {"wall": [], "cpu": []})
        d["wall"].append(n / dt)
        d["cpu"].append(n / cpu if cpu > 0 else 0.0)

    with driver(settings) as drv, drv.session(database=settings.neo4j_database) as s:
        ensure_schema(s)

        def write(fn, prefix: str) -> None:
            for part in _slices(_rows(records, prefix), 500):
                s.execute_write(fn, part)

        # A fresh JVM runs the first few thousand turns several times slower while its JIT
        # compiles; warm it on separate copies so neither variant pays for that.
        for w in range(warm_rounds):
            write(write_rows, f"warm-{w}-")
        write(write_rows_naive, "warm-naive-")
        for r in range(rounds):
            timed("baseline_naive_merge", lambda: write(write_rows_naive, f"naive-{r}-"))
            timed("batched_write", lambda: write(write_rows, f"batched-{r}-"))
    imp = Importer(settings, batch_size=500)
    ids = [rec.record["turn_id"] for rec in records if rec.type == "turn"]
    for r in range(rounds):
        with driver(settings) as drv, drv.session(database=settings.neo4j_database) as s:
            s.run("UNWIND $ids AS id MATCH (t:Turn {id: id}) DETACH DELETE t", ids=ids).consume()
        imp.reset_cursor()
        timed("end_to_end", imp.run_once)
    counts = imp.counts()
    t0 = time.perf_counter()
    imp.reset_cursor()
    imp.run_once()
    out["reimport_turns_per_s"] = round(n / (time.perf_counter() - t0), 1)
    out["idempotent"] = imp.counts() == counts and counts["Turn"] >= n
    imp.close()
    for key, d in per.items():
        out[f"{key}_turns_per_s"] = _median(d["wall"])
        out[f"{key}_turns_per_cpu_s"] = _median(d["cpu"])
        out[f"{key}_turns_per_s_rounds"] = [round(x, 1) for x in d["wall"]]
    out["batched_vs_naive"] = round(out["batched_write_turns_per_s"] / out["baseline_naive_merge_turns_per_s"], 2)
    out["note"] = ("end_to_end = read + verify signatures + chain + batched write (fresh turns each round); "
                   "*_per_cpu_s counts the client and the graph server process")
    out["outage"] = bench_outage(settings, bench_outage.server, n=min(n, 600))
    return out


def bench_outage(settings, server, n: int) -> dict:
    """Write turns while the server is stopped and restarted; count what reached the graph."""
    t = Tracker(settings, redactor=redact)
    cont = ContinuousImporter(settings, interval=0.2).start()
    imp = Importer(settings)
    before = imp.counts()["Turn"]
    stop_at = n // 3
    for i in range(n):
        t.record_turn(**_turn(100_000 + i, f"o{i % 9}"))
        if i == stop_at:
            server.stop()
        if i == 2 * stop_at:
            server = start_graph_server(settings, data_dir=Path(settings.home) / "graph", reuse=False, timeout=180)
            bench_outage.server = server  # so the caller stops the right process
        time.sleep(0.005)
    t.close()
    deadline = time.monotonic() + 120
    got = 0
    while time.monotonic() < deadline:
        try:
            got = imp.counts()["Turn"] - before
            if got >= n:
                break
        except Exception:  # noqa: BLE001 - server still warming up
            imp.close()
        time.sleep(0.5)
    cont.stop()
    imp.run_once()
    got = imp.counts()["Turn"] - before
    imp.close()
    return {"turns_written": n, "turns_in_graph": got, "lost": n - got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=3000)
    ap.add_argument("--rsa-turns", type=int, default=600)
    ap.add_argument("--tamper-cases", type=int, default=100)
    ap.add_argument("--graph-turns", type=int, default=2000)
    ap.add_argument("--graph-rounds", type=int, default=3, help="timed rounds per graph variant (medians reported)")
    ap.add_argument("--no-graph", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="sahayak-bench-prov-"))
    report: dict = {"load_average_start": os.getloadavg(), "cpu_count": os.cpu_count()}
    try:
        ed = bench_sign(tmp, a.turns, "ed25519")
        base = bench_sign(tmp, a.turns, "ed25519", nosign=True)
        rsa = bench_sign(tmp, a.rsa_turns, "rsa-pss")
        settings = ed.pop("settings")
        folder = Path(ed.pop("folder"))
        for d in (base, rsa):
            d.pop("settings")
            d.pop("folder")
        report["sign"] = {"end_to_end_ed25519": ed, "end_to_end_rsa_pss_2048": rsa,
                          "end_to_end_baseline_no_signature": base,
                          "core_ed25519": bench_seal(tmp, a.turns, "ed25519"),
                          "core_rsa_pss_2048": bench_seal(tmp, a.rsa_turns, "rsa-pss"),
                          "target_ed25519_records_per_s": 2000,
                          "note": "end_to_end includes PII redaction (privacy.redact), the largest cost"}
        report["bytes_per_turn"] = round(ed["log_bytes"] / a.turns, 1)
        report["verify"] = bench_verify(folder, settings) | {"target_records_per_s": 5000}
        report["tamper"] = bench_tamper(folder, settings, a.tamper_cases, rng)
        if not a.no_graph:
            try:
                report["graph"] = bench_graph(tmp, a.graph_turns, a.graph_rounds) | {"target_turns_per_s": 1000}
            finally:
                srv = getattr(bench_outage, "server", None)
                if srv is not None:
                    srv.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_average_end"] = os.getloadavg()
    text = json.dumps(report, default=str)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=2, default=str))
    print(text)


if __name__ == "__main__":
    main()
