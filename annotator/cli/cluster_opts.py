"""The ``--scheduler`` / ``--path-map`` options of `scan` and `embed` (core/infra/cluster.py).

Without ``--scheduler`` nothing here imports dask; with it the scheduler is reached before the
project is opened, so an unreachable one is one error line and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from annotator.model import AnnotatorError

if TYPE_CHECKING:
    from annotator.core.infra.cluster import Cluster


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--path-map",
        "path_map",
        multiple=True,
        metavar="OLD=NEW",
        help="With --scheduler: source paths starting with OLD are read from NEW on the "
        "workers (repeat for several).",
    )(f)
    return click.option(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help="Run the per-face work on this Dask scheduler's workers (the optional "
        "[distributed] extra); only this process writes the project file.",
    )(f)


def open_cluster(scheduler: str | None, path_map: tuple[str, ...]) -> Cluster | None:
    """The connected cluster, or None without --scheduler (dask is not imported then)."""
    if scheduler is None:
        if path_map:
            raise AnnotatorError("--path-map only applies with --scheduler")
        return None
    from annotator.core.infra.cluster import PathMap, connect

    pm = PathMap.parse(path_map)  # a bad map is refused before connecting
    return connect(scheduler, pm)


def bar_label(what: str, cluster: Cluster | None) -> str | Callable[[], str]:
    """The progress bar's label: with a cluster, its status (tasks, workers, faces/s) too."""
    if cluster is None:
        return what
    return lambda: f"{what} [{cluster.status()}]"
