"""Connected components of an undirected graph given as edge arrays.

The labels are scipy's (``scipy.sparse.csgraph.connected_components(directed=False)``): the
components numbered 0, 1, ... in the order of their smallest node. A graph of few edges (the
flag step's duplicate pairs on most projects) is joined in NumPy: the ``scipy.sparse`` import
alone cost the scan's main process ~0.25 s CPU on every scan (docs/MEASUREMENTS.md,
"Crop-proof near copies", the fifth round); a graph of many edges still goes to scipy, faster
there. tests/core/test_components.py checks the labels against scipy's.
"""

from __future__ import annotations

import numpy as np

SCIPY_EDGES = 1 << 16  # more edges than this: scipy's C code (its import is then the small
# part; at 1M edges it was 1.5-3x faster than the NumPy rounds)


def component_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) integer component label of each node 0..n-1 of the graph with edges (a[k], b[k]):
    components numbered by their smallest node, as scipy numbers them. Up to SCIPY_EDGES
    edges in NumPy (:func:`small_graph_labels`), more by scipy itself."""
    if len(a) > SCIPY_EDGES:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        g = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
        return connected_components(g, directed=False)[1]
    return small_graph_labels(n, a, b)


def small_graph_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`component_labels` in NumPy, for graphs of few edges.

    The nodes the edges touch are numbered in order (so the smallest stays smallest) and
    joined by :func:`_roots`; every other node is a component of its own. Then each node's
    label is the number of components whose smallest node comes before its own's."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    small = np.int32 if n < 2**31 else np.int64  # per-node arrays: 4 bytes a node where it fits
    touched = np.zeros(n, bool)
    touched[a] = True
    touched[b] = True
    u = np.flatnonzero(touched)  # the touched nodes, in order
    local = np.cumsum(touched, dtype=small) - 1  # node -> its place in u
    root = _roots(len(u), local[a], local[b])
    first = np.logical_not(touched, out=touched)  # True where a node is its component's
    first[u] = root == np.arange(len(u))  # smallest (an untouched node: its own)
    label = np.cumsum(first, dtype=small) - 1
    label[u] = label[u[root]]
    return label


def _roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each node's smallest node of its component (nodes 0..n-1, edges (a[k], b[k])).

    Hook and compress: each node keeps a parent no larger than itself in its component; every
    round hooks the larger root of each edge whose two roots differ onto the smaller
    (``np.minimum.at``), then jumps pointers until every node points at its root. A root is
    its component's smallest node (that node's parent can be no smaller), so when no edge
    joins two roots, every node points at its component's smallest node."""
    parent = np.arange(n, dtype=np.int64)
    keep = a != b
    a, b = a[keep], b[keep]
    while len(a):
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            break
        np.minimum.at(
            parent, np.maximum(pa[differ], pb[differ]), np.minimum(pa[differ], pb[differ])
        )
        while True:  # pointer jumping: every node to its root
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
        a, b = a[differ], b[differ]  # an edge whose roots agree stays joined
    return parent
