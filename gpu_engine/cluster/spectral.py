"""Spectral clustering with one eigendecomposition shared by every k and seed.

scikit-learn's ``SpectralClustering(k, random_state=s)`` computes the k smallest eigenvectors
of the normalized Laplacian of the affinity (ARPACK, shift-invert) and runs k-means on them.
The eigenvectors do not depend on k or on the seed, so an ensemble of spectral members (k =
2 … K × seeds) needs one dense ``eigh`` with K vectors; member (k, s) then runs k-means on the
first k columns. Semantics follow scikit-learn 1.x: the affinity's diagonal is ignored, the
Laplacian is ``I − D^−½ A D^−½``, the embedding is ``x / √d`` with each vector's sign set so
that its largest-magnitude entry is positive, and k-means gets the random state after the
ARPACK start vector was drawn from it (so labels equal scikit-learn's, up to eigen-solver
tolerance, which the tests check by ARI).
"""

from __future__ import annotations

import numpy as np

from ..backend import Backend, get_backend


def rbf_affinity(X: np.ndarray, gamma: float) -> np.ndarray:
    """exp(−γ‖xᵢ − xⱼ‖²), n × n."""
    sq = (X * X).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (X @ X.T), 0.0)
    return np.exp(-gamma * d2)


def spectral_embedding(affinity: np.ndarray, n_components: int, *,
                       backend: Backend | str | None = None) -> np.ndarray:
    """n × ``n_components`` spectral embedding of a dense symmetric affinity (smallest
    Laplacian eigenvalues first). On a GPU backend the eigendecomposition runs there."""
    be = get_backend(backend)
    xp = be.xp
    A = xp.array(affinity, dtype=xp.float64)
    n = A.shape[0]
    A[xp.arange(n), xp.arange(n)] = 0.0
    d = A.sum(1)
    dd = xp.sqrt(xp.where(d > 0, d, 1.0))
    L = -(A / dd[:, None]) / dd[None, :]
    L[xp.arange(n), xp.arange(n)] = 1.0
    V = be.lowest_eigenvectors(L, n_components)
    U = V / dd[:, None]
    top = xp.argmax(xp.abs(U), axis=0)
    U = U * xp.sign(U[top, xp.arange(U.shape[1])])[None, :]
    return be.to_host(U)


def spectral_labels(embedding: np.ndarray, k: int, seed: int, *, n_init: int = 10
                    ) -> np.ndarray:
    """Labels of spectral member (k, seed) from a shared ``embedding`` (≥ k columns)."""
    from sklearn.cluster import k_means

    rs = np.random.RandomState(seed)
    rs.uniform(-1, 1, embedding.shape[0])  # ARPACK's start vector, drawn first by sklearn
    maps = np.ascontiguousarray(embedding[:, :k])
    _, labels, _ = k_means(maps, k, random_state=rs, n_init=n_init)
    return labels
