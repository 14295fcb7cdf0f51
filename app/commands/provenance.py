"""`sahayak provenance …` (log, keys, proofs, export), `sahayak graph …` (Bolt server and
import) and `sahayak audit …` (staff queries over the graph)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from app.errors import SahayakError

prov_app = typer.Typer(help="Signed provenance log: verify, prove, keys, flush, export.", no_args_is_help=True)
graph_app = typer.Typer(help="Provenance graph: embedded Bolt server and importer.", no_args_is_help=True)
audit_app = typer.Typer(help="Staff audit queries over the provenance graph.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(prov_app, name="provenance")
    root.add_typer(graph_app, name="graph")
    root.add_typer(audit_app, name="audit")


def _settings():
    from app.settings import get_settings

    return get_settings()


def _exit(code: int) -> None:
    # sys.exit, not typer.Exit: the entry point runs click with standalone_mode=False,
    # where an Exit's code is returned rather than used as the process status.
    if code:
        sys.exit(code)


def _echo_json(obj) -> None:
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
) -> None:
    """Check signatures, hash chain, schema and Merkle checkpoints; exit 1 on any failure."""
    from provenance.keys import load_public_pem
    from provenance.verify import trusted_keys, verify_log

    settings = _settings()
    log = log or settings.provenance_dir
    keys = trusted_keys(settings, pubkey)
    seed_keys = [load_public_pem(p.read_bytes()) for p in seed_pubkey]
    v = verify_log(log, keys=keys, seed_keys=seed_keys)
    rep = v.report()
    if as_json:
        _echo_json(rep)
    else:
        from rich.console import Console
        from rich.table import Table

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
    _exit(0 if v.ok else 1)


@prov_app.command("prove")
def prove_cmd(
    record_id: str = typer.Argument(..., help="Record id (or turn id) to prove."),
    log: Optional[Path] = typer.Option(None, "--log", help="Provenance folder (default: this installation's)."),
) -> None:
    """Print a Merkle inclusion proof for one record against the latest covering checkpoint (verified)."""
    from provenance.verify import prove_inclusion

    settings = _settings()
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
    from provenance.verify import prove_consistency

    settings = _settings()
    proof = prove_consistency(log or settings.provenance_dir, old_size, new_size, settings=settings)
    _echo_json(proof)
    _exit(0 if proof["verified"] else 1)


@prov_app.command("keygen")
def keygen_cmd(
    alg: Optional[str] = typer.Option(None, "--alg", help="ed25519 (default) or rsa-pss."),
    force: bool = typer.Option(False, "--force", help="Make a new active key even if one exists (prefer `rotate`)."),
) -> None:
    """Create the signing key (0600, under SAHAYAK_HOME/keys/provenance); idempotent."""
    from provenance.keys import keyring_for

    settings = _settings()
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
    from provenance import get_tracker

    t = get_tracker(_settings())
    res = t.rotate_key(alg)
    t.close()
    _echo_json(res)


@prov_app.command("keys")
def keys_cmd() -> None:
    """List signing keys (ids, algorithms, validity; never key material)."""
    from provenance.keys import keyring_for

    _echo_json(keyring_for(_settings()).describe())


@prov_app.command("flush")
def flush_cmd() -> None:
    """Write pending records, append a signed checkpoint and fsync."""
    from provenance import get_tracker

    t = get_tracker(_settings())
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
    from provenance.prov import export_prov

    settings = _settings()
    text = export_prov(log or settings.provenance_dir, fmt, settings=settings)
    if out:
        out.write_text(text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)
