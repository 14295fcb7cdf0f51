"""`sahayak provenance …` (log, keys, proofs, export), `sahayak graph …` (Bolt server and
import) and `sahayak audit …` (staff queries over the graph)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from app.core.errors import SahayakError
from app.core.settings import get_settings
from app.ops.graph import start_graph_server
from privacy.redact import redact
from provenance import get_tracker
from provenance.checks import Verification
from provenance.graph import CURSOR_NAME, ContinuousImporter, GraphUnavailable, Importer, import_seed_log
from provenance.keys import keyring_for, load_public_pem
from provenance.proofs import prove_consistency, prove_inclusion
from provenance.prov import export_prov
from provenance.queries import SEED_CYPHER, Audit, render_lineage, verify_session
from provenance.verify import trusted_keys, verify_log

prov_app = typer.Typer(help="Signed provenance log: verify, prove, keys, flush, export.", no_args_is_help=True)
graph_app = typer.Typer(help="Provenance graph: embedded Bolt server and importer.", no_args_is_help=True)
audit_app = typer.Typer(help="Staff audit queries over the provenance graph.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Attach `sahayak provenance …`, `sahayak graph …` and `sahayak audit …` to the root CLI."""
    root.add_typer(prov_app, name="provenance")
    root.add_typer(graph_app, name="graph")
    root.add_typer(audit_app, name="audit")


def _exit(code: int) -> None:
    # sys.exit, not typer.Exit: the entry point runs click with standalone_mode=False,
    # where an Exit's code is returned rather than used as the process status.
    if code:
        sys.exit(code)


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


# --------------------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------------------
@prov_app.command("verify")
def verify_cmd(
    log: Optional[Path] = typer.Argument(None, help="A segment file or the provenance folder (default: this installation's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    pubkey: List[Path] = typer.Option([], "--pubkey", help="Extra trusted public key (PEM); repeatable."),
    seed_pubkey: List[Path] = typer.Option([], "--seed-pubkey", help="RSA public key (PEM) for seed 1.1 envelopes."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Processes checking signatures (default: one per CPU; 1 = in-process). "
                                               "Small logs are always checked in-process; the report is the same."),
) -> None:
    """Check signatures, hash chain, schema and Merkle checkpoints; exit 1 on any failure."""
    settings = get_settings()
    log = log or settings.provenance_dir
    keys = trusted_keys(settings, pubkey)
    seed_keys = [load_public_pem(p.read_bytes()) for p in seed_pubkey]
    v = verify_log(log, keys=keys, seed_keys=seed_keys, workers=workers)
    rep = v.report()
    if as_json:
        _echo_json(rep)
    else:
        _print_verification(v, rep)
    _exit(0 if v.ok else 1)


def _print_verification(v: Verification, rep: dict[str, Any]) -> None:
    """The verification summary, the first 200 failures as a table and the first 20 warnings."""
    con = Console()
    status = "[green]OK[/green]" if v.ok else "[red]FAILED[/red]"
    con.print(f"{status}  {rep['valid_records']} valid of {rep['lines']} lines in {len(rep['files'])} file(s); "
              f"checkpoints verified {rep['checkpoints']['verified']}, failed {rep['checkpoints']['failed']}")
    if v.failures:
        t = Table("file", "line", "kind", "detail")
        for f in v.failures[:200]:
            t.add_row(Path(f.file).name, str(f.line), f.kind, f.detail)
        con.print(t)
    for w in rep["warnings"][:20]:
        con.print(f"[yellow]warning[/yellow] {w['file']}:{w['line']} {w['kind']}: {w['detail']}")


@prov_app.command("prove")
def prove_cmd(
    record_id: str = typer.Argument(..., help="Record id (or turn id) to prove."),
    log: Optional[Path] = typer.Option(None, "--log", help="Provenance folder (default: this installation's)."),
) -> None:
    """Print a Merkle inclusion proof for one record against the latest covering checkpoint (verified)."""
    settings = get_settings()
    proof = prove_inclusion(log or settings.provenance_dir, record_id, settings=settings)
    _echo_json(proof)
    _exit(0 if proof["verified"] else 1)


@prov_app.command("consistency")
def consistency_cmd(
    old_size: int = typer.Argument(..., help="Tree size of the older checkpoint."),
    new_size: Optional[int] = typer.Argument(None, help="Tree size of the newer checkpoint (default: latest)."),
    log: Optional[Path] = typer.Option(None, "--log"),
) -> None:
    """Print a Merkle consistency proof between two checkpoints (verified)."""
    settings = get_settings()
    proof = prove_consistency(log or settings.provenance_dir, old_size, new_size, settings=settings)
    _echo_json(proof)
    _exit(0 if proof["verified"] else 1)


@prov_app.command("keygen")
def keygen_cmd(
    alg: Optional[str] = typer.Option(None, "--alg", help="ed25519 (default) or rsa-pss."),
    force: bool = typer.Option(False, "--force", help="Make a new active key even if one exists (prefer `rotate`)."),
) -> None:
    """Create the signing key (0600, under SAHAYAK_HOME/keys/provenance); idempotent."""
    settings = get_settings()
    ring = keyring_for(settings)
    if ring.exists() and not force:
        signer = ring.active()
        typer.echo(f"signing key exists: {signer.key_id} ({signer.alg})")
        return
    signer = ring.generate(alg or settings.signing_algorithm)
    typer.echo(f"created signing key {signer.key_id} ({signer.alg}) in {ring.folder}")


@prov_app.command("rotate")
def rotate_cmd(alg: Optional[str] = typer.Option(None, "--alg", help="Algorithm of the new key.")) -> None:
    """Rotate the signing key: the old key signs a key_rotation event; old public keys stay for verifying."""
    t = get_tracker(get_settings(), redactor=redact)
    res = t.rotate_key(alg)
    t.close()
    _echo_json(res)


@prov_app.command("keys")
def keys_cmd() -> None:
    """List signing keys (ids, algorithms, validity; never key material)."""
    _echo_json(keyring_for(get_settings()).describe())


@prov_app.command("flush")
def flush_cmd() -> None:
    """Write pending records, append a signed checkpoint and fsync."""
    t = get_tracker(get_settings(), redactor=redact)
    t.record_event("flush_requested", source="cli")
    t.flush(timeout=60)
    st = t.stats()
    t.close()
    typer.echo(f"provenance flushed: next seq {st['next_seq']}, healthy={st['healthy']}")


@prov_app.command("export")
def export_cmd(
    fmt: str = typer.Option("turtle", "--format", "-f", help="turtle | json-ld"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (default: stdout)."),
    log: Optional[Path] = typer.Option(None, "--log"),
) -> None:
    """Export the (verified) log as W3C PROV-O."""
    settings = get_settings()
    text = export_prov(log or settings.provenance_dir, fmt, settings=settings)
    if out:
        out.write_text(text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)


# --------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------
@graph_app.command("serve")
def graph_serve(
    follow: bool = typer.Option(True, "--import/--no-import", help="Keep the graph caught up with the log while serving."),
) -> None:
    """Run the embedded Bolt graph server (ArcadeDB) on settings.neo4j_uri until Ctrl-C."""
    settings = get_settings()
    server = start_graph_server(settings, reuse=False)
    typer.echo(f"graph server on {server.uri} (user {settings.neo4j_user}); data {Path(settings.home) / 'graph'}; "
               f"log {server.log_path}; Ctrl-C to stop")
    imp = ContinuousImporter(settings).start() if follow else None
    try:
        while server.process.poll() is None:
            time.sleep(1)
        raise SahayakError(f"graph server exited with code {server.process.returncode}; see {server.log_path}")
    except KeyboardInterrupt:
        typer.echo("stopping graph server")
    finally:
        if imp:
            imp.stop()
        server.stop()


@graph_app.command("import")
def graph_import(
    reset: bool = typer.Option(False, "--reset", help="Re-import from the beginning (idempotent)."),
    follow: bool = typer.Option(False, "--follow", help="Keep importing new records until Ctrl-C."),
    batch: int = typer.Option(500, "--batch", help="Records per transaction."),
    log: Optional[Path] = typer.Option(None, "--log", help="Another log: a 2.0 log folder, or a seed schema 1.1 "
                                       "JSONL file (then --seed-pubkey)."),
    seed_pubkey: List[Path] = typer.Option([], "--seed-pubkey", help="RSA public key (PEM) of a seed 1.1 log."),
) -> None:
    """Verify and import the provenance log into the graph (Bolt; settings.neo4j_uri)."""
    if log is not None and log.is_file() and _is_seed_log(log):
        keys = [load_public_pem(p.read_bytes()) for p in seed_pubkey]
        summary = import_seed_log(log, keys, get_settings(), redactor=redact)
        typer.echo(json.dumps({"log": str(log), "schema_version": "1.1", **summary}))
        return
    imp = Importer(get_settings(), folder=log, batch_size=batch)
    if reset:
        imp.reset_cursor()
    try:
        with Progress(transient=True) as prog:
            task = prog.add_task("importing", total=None)
            t0 = time.perf_counter()
            n = imp.run_once(progress=lambda k: prog.update(task, completed=k))
            dt = time.perf_counter() - t0
        typer.echo(f"imported {n} records in {dt:.1f}s; graph now: {json.dumps(imp.counts())}")
        if follow:
            _keep_importing(imp)
    except KeyboardInterrupt:
        pass
    finally:
        imp.close()


def _is_seed_log(path: Path) -> bool:
    """True when the file's first envelope says schema 1.1 (the seed's format)."""
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    return json.loads(raw).get("schema_version") == "1.1"
                except (ValueError, AttributeError):
                    return False
    return False


def _keep_importing(imp: Importer) -> None:
    """Import new records every two seconds until Ctrl-C, riding out graph outages."""
    while True:
        time.sleep(2)
        try:
            k = imp.run_once()
            if k:
                typer.echo(f"imported {k} new records")
        except GraphUnavailable as exc:
            typer.echo(f"waiting for the graph: {exc}", err=True)


@graph_app.command("status")
def graph_status() -> None:
    """Is the graph reachable, what does it hold, and how far has the import got?"""
    settings = get_settings()
    cur_path = settings.provenance_dir / CURSOR_NAME
    cursor = json.loads(cur_path.read_text()) if cur_path.exists() else {}
    imp = Importer(settings)
    try:
        counts = imp.counts()
        up = True
    except Exception as exc:  # noqa: BLE001 - status reports, never fails
        counts, up = {"error": str(exc)}, False
    finally:
        imp.close()
    _echo_json({"uri": settings.neo4j_uri, "reachable": up, "counts": counts,
                "cursor": {k: cursor.get(k) for k in ("segment", "line", "next_seq", "imported")}})


# --------------------------------------------------------------------------------------
# audit
# --------------------------------------------------------------------------------------
def _show(rows: Any, as_json: bool, title: str) -> None:
    """Rows as JSON or as one table (values cut at 80 characters)."""
    if as_json:
        _echo_json(rows)
        return
    rows = rows if isinstance(rows, list) else [rows]
    con = Console()
    if not rows:
        con.print(f"{title}: none")
        return
    t = Table(*rows[0].keys(), title=title, show_lines=False)
    for r in rows:
        t.add_row(*[(json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, (dict, list)) else str(v))[:80]
                    for v in r.values()])
    con.print(t)


def _audit() -> Audit:
    return Audit(get_settings())


JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


@audit_app.command("cypher")
def audit_cypher(query: str = typer.Argument(..., help="Read-only Cypher, or a seed query number 3.1–3.8."),
                 as_json: bool = JSON_OPT) -> None:
    """Run read-only Cypher over the graph (writes, CALL and admin commands are refused)."""
    with _audit() as a:
        _show(a.cypher(SEED_CYPHER.get(query.strip(), query)), as_json, "rows")


@audit_app.command("datasets")
def audit_datasets(as_json: bool = JSON_OPT) -> None:
    """Datasets with their SHA-256."""
    with _audit() as a:
        _show(a.datasets(), as_json, "datasets")


@audit_app.command("models")
def audit_models(as_json: bool = JSON_OPT) -> None:
    """Models with hyper-parameters, metrics and git commit."""
    with _audit() as a:
        _show(a.models(), as_json, "models")


@audit_app.command("datasets-per-model")
def audit_dpm(as_json: bool = JSON_OPT) -> None:
    """Which datasets each model was trained on."""
    with _audit() as a:
        _show(a.datasets_per_model(), as_json, "datasets per model")


@audit_app.command("inferences")
def audit_inferences(limit: int = typer.Option(20, "--limit"), as_json: bool = JSON_OPT) -> None:
    """Latest turns with (redacted) input and output."""
    with _audit() as a:
        _show(a.inferences(limit), as_json, "inferences")


@audit_app.command("lineage")
def audit_lineage(limit: int = typer.Option(20, "--limit"), as_json: bool = JSON_OPT,
                  turn: Optional[str] = typer.Option(None, "--turn", help="Render this turn's lineage graph."),
                  out: Path = typer.Option(Path("lineage.png"), "--out", "-o", help="PNG or SVG file for --turn.")) -> None:
    """Full lineage dataset → model → turn (or render one turn's lineage graph with --turn)."""
    with _audit() as a:
        if turn:
            typer.echo(f"wrote {render_lineage(a, turn, out)}")
            return
        _show(a.lineage(limit), as_json, "lineage")


@audit_app.command("multi-dataset-models")
def audit_multi(as_json: bool = JSON_OPT) -> None:
    """Models trained on more than one dataset."""
    with _audit() as a:
        _show(a.multi_dataset_models(), as_json, "models trained on several datasets")


@audit_app.command("orphan-models")
def audit_orphans(as_json: bool = JSON_OPT) -> None:
    """Models without dataset provenance."""
    with _audit() as a:
        _show(a.models_without_datasets(), as_json, "models without dataset provenance")


@audit_app.command("session")
def audit_session(session: str = typer.Argument(..., help="Session id or its pseudonym (s_…)."),
                  as_json: bool = JSON_OPT,
                  verify: bool = typer.Option(False, "--verify", help="Also verify signatures, chain and inclusion.")) -> None:
    """A session's timeline of turns and events."""
    with _audit() as a:
        rows = a.session_timeline(session)
    if verify:
        _mark_verified(rows, verify_session(session, get_settings()))
    _show(rows, as_json, f"session {session}")


def _mark_verified(rows: list[dict[str, Any]], res: dict[str, Any]) -> None:
    """Set each timeline row's ``verified``: signature, chain link and inclusion all checked."""
    checks = {r["record_id"]: r for r in res["records"]}
    for r in rows:
        c = next((x for x in checks.values() if x["turn_id"] == r["id"] or x["record_id"] == r["id"]), None)
        r["verified"] = bool(c and c["signature_ok"] and c["chain_ok"] and c["included"])


@audit_app.command("why")
def audit_why(turn_id: str = typer.Argument(...), as_json: bool = JSON_OPT) -> None:
    """Why did the bot say this: the turn, its passages and documents, models and their datasets."""
    with _audit() as a:
        res = a.why(turn_id)
    if as_json:
        _echo_json(res)
        return
    kv = Table("field", "value", title=f"turn {turn_id}")
    for k, v in res["turn"].items():
        kv.add_row(k, json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v))
    Console().print(kv)
    _show(res["passages"], False, "retrieved passages")
    _show(res["models"], False, "models and their datasets")


@audit_app.command("handoffs")
def audit_handoffs(limit: int = typer.Option(50, "--limit"), as_json: bool = JSON_OPT) -> None:
    """Hand-offs to staff."""
    with _audit() as a:
        _show(a.handoffs(limit), as_json, "hand-offs")


@audit_app.command("low-confidence")
def audit_low(threshold: Optional[float] = typer.Option(None, "--threshold", help="Default: settings.clarify_threshold."),
              limit: int = typer.Option(50, "--limit"), as_json: bool = JSON_OPT) -> None:
    """Turns whose intent confidence was below the threshold."""
    with _audit() as a:
        _show(a.low_confidence(threshold, limit), as_json, "low-confidence turns")
