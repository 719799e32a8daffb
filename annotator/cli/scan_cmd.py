"""`annotator scan` (hash faces, find duplicates, flag suspicious ones) and `annotator flags`."""

from __future__ import annotations

import contextlib

import click

from annotator.cli.cluster_opts import bar_label, cluster_options, open_cluster
from annotator.cli.common import emit_json, json_option, open_existing, progress_bar, project_option
from annotator.core.dedup.flags import DEFAULT_RADIUS
from annotator.core.dedup.flagset import KINDS
from annotator.core.dedup.hashing import to_hex
from annotator.core.scan import scan as run_scan
from annotator.store import flags as store
from annotator.store import hashes as hashes_store
from annotator.store import identity_check as ic_store


@click.command("scan")
@project_option
@click.option(
    "--radius",
    type=click.IntRange(0, 32),
    default=None,
    help="Candidate radius in pHash bits for this run (default: the project's `radius` "
    f"setting, {DEFAULT_RADIUS} unless `annotator config` changed it); every candidate pair is "
    "verified (dHash, then thumbnail similarity) before it becomes a duplicate.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes (default: all cores).",
)
@cluster_options
@json_option
def scan(
    project_path: str,
    radius: int | None,
    workers: int | None,
    scheduler: str | None,
    path_map: tuple[str, ...],
    as_json: bool,
) -> None:
    """Hash every face not hashed yet (SHA-256, pHash, dHash, size, grayscale, sharpness),
    then recompute duplicate groups, flags and identity suspicion for the whole project."""
    cluster = open_cluster(scheduler, path_map)  # before the project: nothing written on error
    with cluster or contextlib.nullcontext(), open_existing(project_path) as project:
        label = bar_label("scanning", cluster)
        with progress_bar(label, quiet=as_json, unit="faces") as bar:
            res = run_scan(project, radius=radius, workers=workers, progress=bar, cluster=cluster)
        if cluster is not None and not as_json:
            click.echo(f"Dask scheduler {cluster.address}: {cluster.status()}", err=True)
    if as_json:
        emit_json(res.as_dict())
        return
    click.echo(
        f"hashed {res.hashed:,} faces in {res.hash_seconds:.1f}s"
        + (
            f" ({res.hashed / res.hash_seconds:,.0f} faces/s)"
            if res.hash_seconds > 0 and res.hashed
            else ""
        )
        + f", {res.corrupt:,} corrupt"
    )
    if res.read_error_count:
        click.echo(
            f"{res.read_error_count:,} faces could not be read (they stay unhashed):", err=True
        )
        for msg in res.read_errors:
            click.echo(f"  {msg}", err=True)
    if res.cancelled:
        click.echo("cancelled; run `annotator scan` again to continue")
        return
    click.echo(
        f"radius {res.radius}: {res.pairs:,} candidate pairs, {res.verified:,} verified, "
        f"{res.groups:,} duplicate groups"
    )
    for kind, n in res.flags.items():
        click.echo(f"  {kind:<20}{n:>10,}")


@click.command("flags")
@project_option
@click.option("--kind", type=click.Choice(KINDS), default=None, help="Only flags of this kind.")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=None,
    help="At most this many flags (best score first).",
)
@json_option
def flags(project_path: str, kind: str | None, limit: int | None, as_json: bool) -> None:
    """List flags, highest score first, with each face's identity and origin."""

    with open_existing(project_path) as project:
        items = store.list_flags(project, kind, limit)
        looks = ic_store.looks_like_by_face(
            project,
            [int(f.faces[0]["id"]) for f in items if f.kind == "suspect_identity"],  # type: ignore[arg-type]
        )
        same = ic_store.same_person(project) if kind is None else []
        why = _propose_keepers(project, items)
        if not as_json:
            phash = {}
            for fl in items:
                for f in fl.faces:
                    h = hashes_store.hash_of(project, int(f["id"]))  # type: ignore[arg-type]
                    phash[f["id"]] = to_hex(h[0]) if h and h[0] is not None else "-"
    if as_json:
        emit_json(
            {
                "flags": [
                    {
                        "kind": f.kind,
                        "distance": f.distance,
                        "similarity": f.similarity,
                        "score": round(f.score, 6),
                        "faces": f.faces,
                    }
                    | _looks_json(f, looks)
                    | ({"keeper_why": why[f.id]} if f.id in why else {})
                    for f in items
                ],
                "same_person": [
                    {"a": p.a, "b": p.b, "distance": round(p.distance, 6)} for p in same
                ],
            }
        )
        return
    if not items:
        click.echo("no flags (run `annotator scan` first)")
        return
    for fl in items:
        dist = "" if fl.distance is None else f" d={fl.distance}"
        sim = "" if fl.similarity is None else f" similarity={fl.similarity:.3f}"
        like = _looks_json(fl, looks)
        like_s = f" looks more like {like['looks_like']}" if like else ""
        if fl.kind == "suspect_identity" and not like:
            like_s = " far from its identity's other faces, looks like no one in the set"
        click.echo(f"{fl.kind}{dist}{sim} score={fl.score:.3f}{like_s}")
        if fl.id in why:
            click.echo(f"    keeper: {why[fl.id]}")
        for f in fl.faces:
            keep = " (keeper)" if f.get("keeper") else ""
            click.echo(f"    #{f['id']} {f['identity']} {f['origin']} phash={phash[f['id']]}{keep}")
    for p in same:
        click.echo(f"probably the same person: {p.a} {p.b} centre distance={p.distance:.3f}")


def _propose_keepers(project, items: list[store.StoredFlag]) -> dict[int, str]:
    """Mark each duplicate flag's faces with the keeper rule's proposal (core/review/keeper.py:
    ``"keeper"`` true on at most one face, false on the others) and return flag id -> why."""
    from annotator.core.review import keeper as keeper_rule

    props = keeper_rule.proposals(project)
    group_of = store.group_of_faces(
        project,
        [int(f.faces[0]["id"]) for f in items if "keeper" in f.faces[0]],  # type: ignore[arg-type]
    )
    why: dict[int, str] = {}
    for fl in items:
        if not fl.faces or "keeper" not in fl.faces[0]:
            continue
        prop = props.get(group_of.get(int(fl.faces[0]["id"]), -1))  # type: ignore[arg-type]
        if prop is None:
            continue
        for f in fl.faces:
            f["keeper"] = f["id"] == prop.face
        why[fl.id] = prop.why
    return why


def _looks_json(fl: store.StoredFlag, looks: dict[int, tuple[str, float]]) -> dict[str, object]:
    """``looks_like`` (the other identity's key) and ``margin`` of a suspect_identity flag."""
    if fl.kind != "suspect_identity" or not fl.faces:
        return {}
    got = looks.get(int(fl.faces[0]["id"]))  # type: ignore[arg-type]
    return {} if got is None else {"looks_like": got[0], "margin": round(got[1], 6)}
