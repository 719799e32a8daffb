"""`annotator embed`: face embeddings (the optional [embed] extra; see annotator/core/identity/embed.py)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from annotator.cli.cluster_opts import bar_label, cluster_options, open_cluster
from annotator.cli.common import emit_json, json_option, open_existing, progress_bar, project_option

if TYPE_CHECKING:
    from annotator.core.identity.embed import EmbedResult

EXIT_INTERRUPTED = 130  # as annotator.cli.main: 128 + SIGINT


@contextmanager
def _ctrl_c_cancels() -> Iterator[dict[str, bool]]:
    """The first Ctrl-C asks the run to stop after the chunks in flight (they are committed);
    a second one interrupts at once (the project stays consistent either way)."""
    state = {"stop": False}

    def handler(signum: int, frame: object) -> None:
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True

    try:
        old = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (e.g. a test runner): plain KeyboardInterrupt
        yield state
        return
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, old)


@click.command("embed")
@project_option
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="KEY",
    help="Only the faces of this identity (repeat for several). Default: every identity, "
    "unreviewed ones first.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes (default: all cores).",
)
@click.option(
    "--align",
    type=click.Choice(["template", "chip", "crop"]),
    default="template",
    show_default=True,
    help="template: every crop mapped onto dlib's face chip by the project's template (the "
    "median 5-point landmarks of a sample of its crops); chip: 5-point landmarks on each crop, "
    "then dlib's face chip; crop: the whole crop resized as the chip.",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where the network runs: onnxruntime's CPU provider (one thread per worker), or its "
    "CUDA provider (needs onnxruntime-gpu; refused in one line without it).",
)
@cluster_options
@json_option
def embed(
    project_path: str,
    identities: tuple[str, ...],
    workers: int | None,
    align: str,
    device: str,
    scheduler: str | None,
    path_map: tuple[str, ...],
    as_json: bool,
) -> None:
    """Compute a face embedding (dlib ResNet, 128 values) for every scanned face that has none.

    The network runs on onnxruntime (its graph built once from dlib's weights and cached in
    ~/.cache/annotator); dlib finds the 5 landmarks and cuts the chip.

    Needs the optional extra: pip install -e '.[embed]'. Resumable: Ctrl-C keeps what is done
    and the next run carries on. Corrupt faces are never embedded.
    """
    from annotator.core.identity.embed import embed as run_embed
    from annotator.core.identity.embed import require_extra
    from annotator.core.identity.engine import check_device

    if scheduler is None:  # on a cluster the workers need the extra, this process does not
        require_extra()  # before opening anything: one line on how to install the extra
    check_device(device, here=scheduler is None)  # --device cuda without CUDA: nothing written
    cluster = open_cluster(scheduler, path_map)  # before the project: nothing written on error
    with cluster or contextlib.nullcontext():
        with open_existing(project_path) as project, _ctrl_c_cancels() as state:
            with progress_bar(bar_label("embedding", cluster), quiet=as_json, unit="faces") as bar:
                res = run_embed(
                    project,
                    identity_keys=list(identities) or None,
                    workers=workers,
                    align=align,
                    progress=bar,
                    cancelled=lambda: state["stop"],
                    cluster=cluster,
                    device=device,
                )
        if cluster is not None and not as_json:
            click.echo(f"Dask scheduler {cluster.address}: {cluster.status()}", err=True)
    if as_json:
        emit_json(res.as_dict())
    else:
        _report(res)
    if state["stop"]:  # Ctrl-C: what was done is kept; the exit code says interrupted
        click.get_current_context().exit(EXIT_INTERRUPTED)


def _report(res: EmbedResult) -> None:
    done = res.embedded + res.failed
    rate = f" ({done / res.seconds:,.1f} faces/s)" if res.seconds > 0 and done else ""
    click.echo(
        f"embedded {res.embedded:,} faces in {res.seconds:.1f}s{rate}"
        + (f", {res.failed:,} failed" if res.failed else "")
        + f"; {res.stored:,} faces have an embedding ({res.model})"
    )
    if res.note:
        click.echo(res.note)
    if res.corrupt_skipped:
        click.echo(f"{res.corrupt_skipped:,} corrupt faces skipped")
    if res.not_scanned:
        click.echo(f"{res.not_scanned:,} faces are not scanned yet: run `annotator scan` first")
    if res.read_error_count:
        click.echo(
            f"{res.read_error_count:,} faces could not be read (they stay without an embedding):",
            err=True,
        )
        for msg in res.read_errors:
            click.echo(f"  {msg}", err=True)
    if res.cancelled:
        click.echo("cancelled; run `annotator embed` again to continue")
