"""Functional-annotation sharing, the γ-step: ν and its gradient, two solvers that agree, the
L1 optimality conditions, and recovery of planted informative annotations on the real
baseline-LF annotations of ../shared/expr_data (permuted annotations give γ̂ ≈ 0)."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_engine.expression.annotations import (
    gamma_weights,
    join_annotations,
    optimality_violation,
    penalty_factors,
    read_annotations,
    scale_annotations,
    smooth,
    solve_gamma_fista,
    solve_gamma_lbfgs,
)


def _problem(seed=0, N=400, K=5):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, K))
    c = rng.exponential(size=N) * np.exp(A[:, 0] - 0.5 * A[:, 1]) / N
    return A, c


def test_penalty_factors_and_gradient():
    A, c = _problem()
    g = np.array([0.3, -0.2, 0.0, 0.1, 0.05])
    assert np.allclose(penalty_factors(A, np.zeros(5)), 1.0)
    assert (penalty_factors(A, g) > 0.5).all()
    f, grad = smooth(A, c, g)
    eps = 1e-6
    fd = [(smooth(A, c, g + eps * e)[0] - smooth(A, c, g - eps * e)[0]) / (2 * eps)
          for e in np.eye(5)]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("eta", [1e-3, 0.02, 0.1])
def test_two_solvers_agree_and_meet_the_optimality_conditions(eta):
    A, c = _problem(seed=1)
    a = solve_gamma_fista(A, c, eta)
    b = solve_gamma_lbfgs(A, c, eta)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert optimality_violation(A, c, eta, a) < 1e-6
    if eta == 0.1:
        assert (a == 0).any()  # the L1 term zeroes some annotations


def test_gamma_recovers_planted_annotations_on_real_annotations(shared):
    from gpu_engine.expression import read_plink

    ann = scale_annotations(read_annotations(
        shared / "expr_data" / "annotations" / "annotations.1.annot.parquet"))
    assert "base" not in ann.columns and ann.shape[1] == 6
    G = read_plink(shared / "expr_data" / "genotypes" / "chr1")
    A, found = join_annotations(G.snps["snp"], ann)
    assert found.all()  # every chr1.bim SNP is annotated
    rng = np.random.default_rng(0)
    informative = [ann.columns.get_loc("Coding_UCSC_common"),
                   ann.columns.get_loc("Conserved_LindbladToh_common")]
    # 60 "genes" of 16 SNPs each; large weights where the planted annotations are carried
    genes = [rng.choice(len(A), 16, replace=False) for _ in range(60)]
    weights = [rng.normal(size=16) * 0.05 * np.exp(1.5 * A[g][:, informative].sum(1).clip(-2, 2))
               for g in genes]
    Ag = np.concatenate([A[g] for g in genes])
    c = gamma_weights(weights, lam=0.05, alpha=0.7)
    # η on the problem's scale: about ¼ of the informative annotations' gradient at γ = 0
    # (0.18, 0.15 here) and above what permuted rows give (≤ 0.04 over three permutations)
    eta = 0.05
    gamma = solve_gamma_fista(Ag, c, eta)
    assert optimality_violation(Ag, c, eta, gamma) < 1e-6
    top2 = set(np.argsort(-gamma)[:2])
    assert top2 == set(informative) and (gamma[informative] > 0).all()
    # permuted annotation rows: nothing to learn
    Ap = Ag[rng.permutation(len(Ag))]
    gp = solve_gamma_fista(Ap, c, eta)
    assert np.abs(gp).sum() < 0.25 * np.abs(gamma[informative]).min() and np.abs(gp).sum() < 0.5
