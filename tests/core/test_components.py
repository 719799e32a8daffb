"""component_labels gives scipy's connected-component labels (the flag step's groups)."""

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from annotator.core.dedup.components import component_labels, small_graph_labels


def _scipy(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    g = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)[1]


@pytest.mark.parametrize("seed", range(12))
def test_labels_equal_scipys(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    m = int(rng.integers(0, 2 * n))
    a = rng.integers(0, n, m)
    b = rng.integers(0, n, m)
    if seed % 3 == 0:  # long chains (many hook rounds), both directions
        p = rng.permutation(n)
        a, b = np.r_[a, p[:-1]], np.r_[b, p[1:]]
    if seed % 4 == 1:  # self loops and repeated edges
        a, b = np.r_[a, a, np.arange(n)], np.r_[b, b, np.arange(n)]
    want = _scipy(n, a, b).tolist()
    assert small_graph_labels(n, a, b).tolist() == want
    assert component_labels(n, a, b).tolist() == want


def test_no_edges_and_empty():
    assert small_graph_labels(0, np.zeros(0, int), np.zeros(0, int)).tolist() == []
    assert small_graph_labels(4, np.zeros(0, int), np.zeros(0, int)).tolist() == [0, 1, 2, 3]
    # numbered by the smallest node of each component
    assert small_graph_labels(5, np.array([4, 3]), np.array([2, 0])).tolist() == [0, 1, 2, 0, 2]


def test_many_edges_go_to_scipy(monkeypatch):
    import annotator.core.dedup.components as C

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 500, 300), rng.integers(0, 500, 300)
    monkeypatch.setattr(C, "SCIPY_EDGES", 100)
    assert C.component_labels(500, a, b).tolist() == small_graph_labels(500, a, b).tolist()
