"""The PredictDB elastic net (GTEx v7 nested-CV pipeline), batched over folds and genes.

The fit is glmnet's Gaussian elastic net with ``standardize=TRUE``: columns scaled by their
population sd inside the fit, coefficients returned per dosage unit, y scaled internally by
its population sd s_y (as glmnet does; λ is reported on y's scale, so the ridge part acts as
λ(1 − α)/s_y — for PredictDB's standardised residuals s_y = √((n − 1)/n)). With x̃ the
standardised columns and ỹ = (y − ȳ)/s_y that is scikit-learn's
``ElasticNet(alpha=λ/s_y, l1_ratio=α)`` on (x̃, ỹ), back-scaled: β = b·s_y/sd_x.

- λ path (cv.glmnet's defaults): ``n_lambda`` values log-spaced from
  λ_max = max_j |x̃_jᵀ(y − ȳ)|/(n α) to λ_max·r (r = 1e-4 when n ≥ p, else 1e-2), computed on
  the data of the call; glmnet's early stop (from the 5th λ on: fractional change of the
  deviance explained < 1e-5, or deviance explained > 0.999) shortens it; fold fits reuse it.
- cv.glmnet (``type.measure="mse"``): cvm(λ) = mean squared error of the held-out predictions
  over every observation; λ_min = the largest λ at the minimum (the first index).
- Nested CV (5 outer × 10 inner), the final 10-fold model, the per-fold metrics and their
  summaries: :func:`fold_metrics`, :func:`summaries` (columns of :data:`SUMMARY_COLUMNS`).

Solving: covariance form, the Gram matrix of each training set obtained from the whole
data's by subtracting the held-out blocks' (one n·p² product per block, not per fit), then
:mod:`gpu_engine.kernels.plier`'s coordinate-descent kernel (signed, one Gram per problem)
for every (gene, training set) of a batch at once, λ by λ with warm starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

ALPHA = 0.5
N_LAMBDA = 100
MIN_LAMBDAS = 5  # glmnet's mnl: no early stop before the 5th λ
STOP_FRACTION = 1e-5  # glmnet's sml
STOP_RSQ = 0.999  # glmnet's rsqmax
# coordinate descent stops when no standardised coefficient moved by more than TOL × the
# largest |b| in a sweep: about glmnet's own default (thresh = 1e-7 on xv·Δb², i.e.
# |Δb| < 3.2e-4 with y scaled to unit variance), so the solutions are as close to the exact
# ones as glmnet's (coefficients ~1e-3 relative; test metrics to ~5 digits). SNPs in strong
# LD converge geometrically and slowly, so a much smaller TOL costs many sweeps (measured on
# n = 670, p = 1,000: TOL 1e-3 10.8 s, 1e-4 23.6 s, 1e-5 43.7 s, 1e-7 100 s per gene's nested
# CV on 2 cores). Parity tests pass tol=1e-11.
TOL = 1e-3
SUMMARY_COLUMNS = (
    "alpha", "n_snps_in_window", "n_snps_in_model", "lambda_min_mse", "test_R2_avg",
    "test_R2_sd", "cv_R2_avg", "cv_R2_sd", "in_sample_R2", "nested_cv_fisher_pval", "rho_avg",
    "rho_se", "rho_zscore", "rho_avg_squared", "zscore_pval", "cv_rho_avg", "cv_rho_se",
    "cv_rho_avg_squared", "cv_zscore_est", "cv_zscore_pval", "cv_pval_est")


def fold_ids(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced fold labels 0…k−1 (PredictDB's ``generate_fold_ids``): labels assigned
    cyclically to ⌈n/k⌉·k slots, the first n kept, then permuted."""
    return rng.permutation(np.tile(np.arange(k), -(-n // k))[:n])


@dataclass
class NestedFolds:
    """Fold labels of one gene's nested CV: ``outer`` (n,), ``inner[o]`` (the samples outside
    outer fold o, in sample order), ``final`` (n,). Give them to reproduce a run exactly."""

    outer: np.ndarray
    inner: list
    final: np.ndarray

    @classmethod
    def draw(cls, n: int, rng: np.random.Generator, outer: int = 5, inner: int = 10,
             final: int = 10) -> NestedFolds:
        o = fold_ids(n, outer, rng)
        return cls(o, [fold_ids(int((o != f).sum()), inner, rng) for f in range(outer)],
                   fold_ids(n, final, rng))


# ----------------------------------------------------------------------------- one problem
@dataclass
class _Problem:
    """One glmnet fit: a gene's training samples ``train`` (sample positions), the held-out
    samples ``held`` predicted along the path (may be empty), the λ' path (on ỹ's scale)."""

    gene: int
    train: np.ndarray
    held: np.ndarray
    lam: np.ndarray | None = None
    # filled by _moments
    mean: np.ndarray = field(default=None, repr=False)
    sd: np.ndarray = field(default=None, repr=False)
    ybar: float = 0.0
    sy: float = 1.0
    ok: np.ndarray = field(default=None, repr=False)


def _lambda_path(c: np.ndarray, n: int, p: int, alpha: float, n_lambda: int) -> np.ndarray:
    """glmnet's default λ' sequence for standardised c = x̃ᵀỹ/n (on ỹ's scale)."""
    lmax = np.max(np.abs(c), initial=0.0) / alpha
    if lmax <= 0:
        return np.zeros(0)
    ratio = 1e-4 if n >= p else 1e-2
    return lmax * ratio ** (np.arange(n_lambda) / (n_lambda - 1))


def _stops_at(rsq: np.ndarray, m: int) -> bool:
    """glmnet's exit test after the m-th λ (1-based) given the deviance explained so far."""
    if m < MIN_LAMBDAS:
        return False
    r, r0 = rsq[m - 1], rsq[m - 2]
    return bool(r - r0 < STOP_FRACTION * r or r > STOP_RSQ)


def early_stop(rsq: np.ndarray) -> int:
    """Number of λ glmnet keeps given the deviance explained along the path (``rsq``): the
    first (1-based) m ≥ 5 with rsq_m − rsq_{m−1} < 1e-5·rsq_m or rsq_m > 0.999, else all."""
    return next((m for m in range(MIN_LAMBDAS, len(rsq) + 1) if _stops_at(rsq, m)), len(rsq))


class _GeneData:
    """One gene's dosages (n × p, imputed) and y (n,), with the whole data's cross products and
    a cache of held-out blocks' products."""

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y = X, y
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        self._blocks: dict = {}

    def block(self, key, rows: np.ndarray):
        if key not in self._blocks:
            Xb = self.X[rows]
            self._blocks[key] = (Xb.T @ Xb, Xb.T @ self.y[rows], Xb.sum(0), self.y[rows].sum(),
                                 float(self.y[rows] @ self.y[rows]))
        return self._blocks[key]


def _moments(data: _GeneData, excluded: list, prob: _Problem):
    """Standardised Gram G̃ (p × p), c̃ (p) of the training set = all samples minus the
    ``excluded`` blocks ((key, rows) pairs); fills prob.mean/sd/ybar/sy/ok."""
    X, y = data.X, data.y
    XtX, Xty = data.XtX.copy(), data.Xty.copy()
    sx, sy_, syy = X.sum(0), y.sum(), float(y @ y)
    for key, rows in excluded:
        bXX, bXy, bsx, bsy, bsyy = data.block(key, rows)
        XtX -= bXX
        Xty -= bXy
        sx = sx - bsx
        sy_ -= bsy
        syy -= bsyy
    n = len(prob.train)
    m = sx / n
    ybar = sy_ / n
    var = np.maximum(np.diag(XtX) / n - m * m, 0.0)
    sd = np.sqrt(var)
    ok = sd > 1e-12 * np.maximum(1.0, np.abs(m))
    sdv = np.where(ok, sd, 1.0)
    yvar = max(syy / n - ybar * ybar, 0.0)
    sy = np.sqrt(yvar) if yvar > 0 else 1.0
    G = XtX
    G /= n
    G -= m[:, None] * m[None, :]
    G /= sdv[:, None]
    G /= sdv[None, :]
    c = (Xty / n - m * ybar) / sdv / sy
    prob.mean, prob.sd, prob.ybar, prob.sy, prob.ok = m, sdv, ybar, sy, ok
    return G, c


def _solve_paths(Gs, cs, probs, alpha, backend, tol=None, stop_early=False):
    """Coordinate descent along each problem's λ' path (all problems of the batch at once):
    returns a list of (L_i × p) standardised coefficient paths. ``stop_early``: apply
    glmnet's early stop per problem as the path goes (its path then ends there; a stopped
    problem stays at its last λ, which costs one sweep per later step)."""
    from ..kernels import registry

    tol = TOL if tol is None else tol
    be = backend
    impl = registry.implementation(be)
    kernel = registry.get("enet_cd", impl)
    xp = be.xp
    k = len(probs)
    P = max(G.shape[0] for G in Gs)
    G3 = np.zeros((k, P, P))
    C = np.zeros((P, k))
    for i, (G, c) in enumerate(zip(Gs, cs)):
        p = G.shape[0]
        G3[i, :p, :p] = G
        C[:p, i] = c
    L = max(len(pr.lam) for pr in probs)
    lam = np.zeros((k, L))
    for i, pr in enumerate(probs):
        if len(pr.lam):
            lam[i] = np.concatenate([pr.lam, np.full(L - len(pr.lam), pr.lam[-1])])
    G3d, Cd = xp.asarray(G3), xp.asarray(C)
    ok = np.zeros((k, P), bool)
    for i, pr in enumerate(probs):
        ok[i, :len(pr.ok)] = pr.ok
    paths = np.zeros((k, L, P))
    length = np.array([len(pr.lam) for pr in probs])
    rsq = np.zeros((k, L))
    b = np.zeros((k, P))
    grad = C.T.copy()  # c − G b at b = 0
    prev = lam[:, 0]
    for step in range(L):
        cur = lam[:, step]
        # glmnet's sequential strong rule: solve on the active coordinates and those whose
        # gradient is near the threshold, then add any that violate the optimality
        # conditions (|c_j − (G b)_j| ≤ αλ for b_j = 0) and solve again
        strong = ok & ((b != 0) | (np.abs(grad) >= (alpha * (2 * cur - prev))[:, None]))
        while True:
            m = max(int(strong.sum(1).max()), 1)
            sub = np.full((k, m), -1, np.int64)
            for i in range(k):
                cols = np.flatnonzero(strong[i])
                sub[i, :cols.size] = cols
            valid = sub >= 0
            u0 = np.where(valid, np.take_along_axis(b, np.maximum(sub, 0), 1), 0.0)
            u = xp.asarray(u0)
            kernel(G3d, Cd, xp.asarray(sub), xp.asarray(cur * alpha),
                   xp.asarray(cur * (1 - alpha)), u, tol, 100_000, positive=False)
            uh = be.to_host(u)
            b = np.zeros((k, P))
            rows, _ = np.nonzero(valid)
            b[rows, sub[valid]] = uh[valid]
            grad = _gradient(G3, C, b)
            viol = ok & ~strong & (np.abs(grad) > (alpha * cur * (1 + 1e-9))[:, None])
            if not viol.any():
                break
            strong |= viol
        prev = cur
        paths[:, step] = b
        for i in range(k):
            if stop_early and step < length[i]:
                # 2bᵀc − bᵀGb with Gb = c − grad
                rsq[i, step] = b[i] @ C[:, i] + b[i] @ grad[i]
                if _stops_at(rsq[i], step + 1):
                    length[i] = step + 1
                    lam[i, step:] = lam[i, step]
        if stop_early and (length <= step + 1).all():
            break
    if stop_early:
        for pr, m in zip(probs, length):
            pr.lam = pr.lam[:m]
    return [paths[i, :len(pr.lam), :Gs[i].shape[0]] for i, pr in enumerate(probs)]


def _gradient(G3, C, b):
    """c − G b per problem (k × P), reading only the columns of G at b's non-zeros (the
    stacked Gram matrices are large: a full product per λ would be memory-bound)."""
    grad = C.T.copy()
    for i in range(len(b)):
        a = np.flatnonzero(b[i])
        if a.size:
            grad[i] -= b[i, a] @ G3[i][a]  # rows (G is symmetric): contiguous reads
    return grad


def _to_dosage_scale(b: np.ndarray, pr: _Problem):
    """(β per dosage unit, intercept) from standardised coefficients b (… × p)."""
    beta = np.where(pr.ok, b * pr.sy / pr.sd, 0.0)
    return beta, pr.ybar - beta @ pr.mean


def _predict(X: np.ndarray, b_path: np.ndarray, pr: _Problem) -> np.ndarray:
    """Predictions (rows of X × λ) along a standardised coefficient path (L × p)."""
    beta, b0 = _to_dosage_scale(b_path, pr)
    return X @ beta.T + b0


def fit_path(X: np.ndarray, y: np.ndarray, lambdas=None, *, alpha: float = ALPHA,
             n_lambda: int = N_LAMBDA, backend=None, tol: float = TOL
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """glmnet's fit of one gene: (λ path on y's scale (L,), coefficients per dosage unit
    (L × p), intercepts (L,)). ``lambdas``: given values (no early stop, as glmnet with a
    user λ), else glmnet's default path with its early stop."""
    from ..backend import get_backend

    data = _GeneData(np.asarray(X, np.float64), np.asarray(y, np.float64))
    pr = _Problem(0, np.arange(len(y)), np.zeros(0, np.int64))
    G, c = _moments(data, [], pr)
    if lambdas is None:
        pr.lam = _lambda_path(np.where(pr.ok, c, 0.0), len(y), G.shape[0], alpha, n_lambda)
    else:
        pr.lam = np.asarray(lambdas, np.float64) / pr.sy
    if not len(pr.lam):
        return np.zeros(0), np.zeros((0, G.shape[0])), np.zeros(0)
    b = _solve_paths([G], [c], [pr], alpha, get_backend(backend), tol,
                     stop_early=lambdas is None)[0]
    beta, b0 = _to_dosage_scale(b, pr)
    return pr.lam * pr.sy, beta, b0


# ----------------------------------------------------------------------------- metrics
def fold_metrics(y: np.ndarray, pred: np.ndarray, rng: np.random.Generator) -> tuple:
    """(R², ρ, z, p) of one held-out fold, PredictDB's definitions: R² = 1 − Σ(y − ŷ)²/Σy²
    (uncentred), ρ = Pearson (0 when sd(ŷ) = 0), z = atanh(ρ)√(n − 3), p = the two-sided
    Pearson test (a U(0, 1) draw when sd(ŷ) = 0)."""
    r2 = 1.0 - float(np.sum((y - pred) ** 2)) / float(np.sum(y ** 2))
    if np.ptp(pred) > 1e-12 * max(1.0, float(np.abs(pred).max())):
        rho, p = stats.pearsonr(pred, y)
        rho, p = float(rho), float(p)
    else:
        rho, p = 0.0, float(rng.uniform())
    return r2, rho, float(np.arctanh(rho) * np.sqrt(len(y) - 3)), p


def summaries(metrics: np.ndarray) -> dict:
    """Summaries of per-fold (R², ρ, z, p) rows: averages, sds (ddof 1), Stouffer and Fisher."""
    r2, rho, z, p = metrics.T
    k = len(r2)
    zs = float(z.sum() / np.sqrt(k))
    return {"R2_avg": float(r2.mean()), "R2_sd": float(r2.std(ddof=1)),
            "rho_avg": float(rho.mean()), "rho_se": float(rho.std(ddof=1)),
            "rho_avg_squared": float(rho.mean() ** 2), "zscore": zs,
            "zscore_pval": float(2 * stats.norm.sf(abs(zs))),
            "fisher_pval": float(stats.chi2.sf(-2 * np.log(p).sum(), 2 * k))}


# ----------------------------------------------------------------------------- cv.glmnet
def _cv_problems(g: int, base_excl: list, train: np.ndarray, folds: np.ndarray,
                 tag) -> tuple[_Problem, list]:
    """The full fit on ``train`` and its fold fits (problems + their excluded blocks)."""
    full = _Problem(g, train, np.zeros(0, np.int64))
    items = [(full, base_excl)]
    for f in range(int(folds.max()) + 1):
        held = train[folds == f]
        items.append((_Problem(g, train[folds != f], held), base_excl + [((tag, f), held)]))
    return full, items


def nested_cv(X: np.ndarray, y: np.ndarray, folds: NestedFolds, *, alpha: float = ALPHA,
              n_lambda: int = N_LAMBDA, backend=None, rng: np.random.Generator | None = None,
              tol: float = TOL) -> dict:
    """PredictDB's nested CV and final model for one gene (``X`` n × p dosages without
    missing values, ``y`` the standardised residual expression). Returns the summary columns
    (:data:`SUMMARY_COLUMNS` less ``n_snps_in_window``) plus ``weights`` (p,) per dosage unit
    at λ_min of the final fit, ``intercept``, the per-fold ``outer_metrics`` and ``cv_metrics``
    (k × 4: R², ρ, z, p). See :func:`fit_genes` for many genes at once."""
    return fit_genes([(X, y, folds)], alpha=alpha, n_lambda=n_lambda, backend=backend,
                     rngs=[rng or np.random.default_rng(0)], tol=tol)[0]


def fit_genes(genes: list, *, alpha: float = ALPHA, n_lambda: int = N_LAMBDA, backend=None,
              rngs: list | None = None, max_batch_bytes: float = 256e6,
              tol: float = TOL) -> list[dict]:
    """:func:`nested_cv` for many genes: ``genes`` is a list of (X, y, NestedFolds); the
    problems of several genes are solved by one kernel call per λ when their Gram matrices fit
    in ``max_batch_bytes``."""
    from ..backend import get_backend

    be = get_backend(backend)
    rngs = rngs or [np.random.default_rng(i) for i in range(len(genes))]
    out: list = [None] * len(genes)
    batch: list = []
    size = 0.0
    for g, (X, _, _) in enumerate(genes):
        need = 66 * X.shape[1] ** 2 * 8.0
        if batch and size + need > max_batch_bytes:
            _fit_batch([genes[i] for i in batch], batch, alpha, n_lambda, be, rngs, out, tol)
            batch, size = [], 0.0
        batch.append(g)
        size += need
    if batch:
        _fit_batch([genes[i] for i in batch], batch, alpha, n_lambda, be, rngs, out, tol)
    return out


def _fit_batch(items, ids, alpha, n_lambda, be, rngs, out, tol):
    datas = [_GeneData(X, y) for X, y, _ in items]
    # phase 1: the full fits (5 outer training sets + all samples) fix every λ path
    fulls, folds_of = [], []
    for j, ((_, y, nf), data) in enumerate(zip(items, datas)):
        n = len(y)
        alls = np.arange(n)
        per_gene = []
        for o in range(int(nf.outer.max()) + 1):
            train = alls[nf.outer != o]
            full, fitems = _cv_problems(j, [(("outer", o), alls[nf.outer == o])], train,
                                        nf.inner[o], ("inner", o))
            per_gene.append((full, fitems, alls[nf.outer == o]))
        full, fitems = _cv_problems(j, [], alls, nf.final, ("final",))
        per_gene.append((full, fitems, None))
        folds_of.append(per_gene)
        fulls += [(pg[1][0], data) for pg in per_gene]
    Gs, cs = [], []
    for (pr, excl), data in ((f[0], f[1]) for f in fulls):
        G, c = _moments(data, excl, pr)
        n, p = len(pr.train), G.shape[0]
        pr.lam = _lambda_path(np.where(pr.ok, c, 0.0), n, p, alpha, n_lambda)
        Gs.append(G)
        cs.append(c)
    live = [i for i, ((pr, _), _) in enumerate(fulls) if len(pr.lam)]
    paths = dict(zip(live, _solve_paths([Gs[i] for i in live], [cs[i] for i in live],
                                        [fulls[i][0][0] for i in live], alpha, be, tol,
                                        stop_early=True)))
    full_paths = {id(pr): paths.get(i, np.zeros((0, Gs[i].shape[0])))
                  for i, ((pr, _), _) in enumerate(fulls)}
    # phase 2: every fold fit on its full fit's λ path, held-out predictions along it
    fold_items = []
    for per_gene, data in zip(folds_of, datas):
        for full, fitems, _ in per_gene:
            for pr, excl in fitems[1:]:
                fold_items.append((pr, excl, data, full))
    preds = {}
    todo = [(pr, excl, data) for pr, excl, data, full in fold_items if len(full.lam)]
    Gs2, cs2 = [], []
    for pr, excl, data, full in fold_items:
        if not len(full.lam):
            continue
        G, c = _moments(data, excl, pr)
        # the full fit's λ on y's scale, seen by this fit's own internal y scaling (glmnet
        # divides a user-given λ by the sd of the y it is given)
        pr.lam = full.lam * full.sy / pr.sy
        Gs2.append(G)
        cs2.append(c)
    if todo:
        for (pr, _, data), b in zip(todo, _solve_paths(Gs2, cs2, [t[0] for t in todo], alpha,
                                                       be, tol)):
            preds[id(pr)] = _predict(data.X[pr.held], b, pr)
    # selection and metrics
    for j, (per_gene, data, gid) in enumerate(zip(folds_of, datas, ids)):
        rng = rngs[gid]
        y = data.y
        outer_rows = []
        for full, fitems, test in per_gene[:-1]:
            pred = _cv_select(full, fitems, full_paths, preds, data, test)[0]
            outer_rows.append(fold_metrics(y[test], pred, rng))
        full, fitems, _ = per_gene[-1]
        pred_all, best, preval = _cv_select(full, fitems, full_paths, preds, data, None)
        nf = items[j][2]
        cv_rows = [fold_metrics(y[nf.final == f], preval[nf.final == f], rng)
                   for f in range(int(nf.final.max()) + 1)]
        b = full_paths[id(full)]
        if best is None:
            beta, b0, lam = np.zeros(data.X.shape[1]), float(y.mean()), np.nan
        else:
            beta, b0 = _to_dosage_scale(b[best], full)
            lam = float(full.lam[best] * full.sy)
        o, c = summaries(np.array(outer_rows)), summaries(np.array(cv_rows))
        out[gid] = {
            "alpha": alpha, "n_snps_in_model": int(np.count_nonzero(beta)),
            "lambda_min_mse": lam,
            "test_R2_avg": o["R2_avg"], "test_R2_sd": o["R2_sd"],
            "cv_R2_avg": c["R2_avg"], "cv_R2_sd": c["R2_sd"],
            "in_sample_R2": 1.0 - float(np.sum((y - pred_all) ** 2)) / float(np.sum(y ** 2)),
            "nested_cv_fisher_pval": o["fisher_pval"], "rho_avg": o["rho_avg"],
            "rho_se": o["rho_se"], "rho_zscore": o["zscore"],
            "rho_avg_squared": o["rho_avg_squared"], "zscore_pval": o["zscore_pval"],
            "cv_rho_avg": c["rho_avg"], "cv_rho_se": c["rho_se"],
            "cv_rho_avg_squared": c["rho_avg_squared"], "cv_zscore_est": c["zscore"],
            "cv_zscore_pval": c["zscore_pval"], "cv_pval_est": c["fisher_pval"],
            "weights": beta, "intercept": float(b0),
            "outer_metrics": np.array(outer_rows), "cv_metrics": np.array(cv_rows)}


def _cv_select(full, fitems, full_paths, preds, data, test):
    """cv.glmnet's choice: λ_min = the first index of the minimal cvm over the fold fits'
    held-out predictions. Returns (predictions of ``test`` rows — or of all rows of the
    training set when ``test`` is None — at λ_min, the index, the pre-validated predictions
    (n,) at λ_min over the training set's own positions)."""
    y = data.y
    b = full_paths[id(full)]
    if not len(full.lam):  # nothing to fit (no usable SNP): the training mean
        rows = test if test is not None else full.train
        mean = float(y[full.train].mean())
        return np.full(len(rows), mean), None, np.full(len(y), mean)
    sq = np.zeros(len(full.lam))
    preval = np.zeros((len(y), len(full.lam)))
    for pr, _ in fitems[1:]:
        p = preds[id(pr)]
        sq += ((y[pr.held][:, None] - p) ** 2).sum(0)
        preval[pr.held] = p
    cvm = sq / len(full.train)
    best = int(np.argmin(cvm))
    rows = test if test is not None else np.arange(len(y))
    pred = _predict(data.X[rows], b[best][None, :], full)[:, 0]
    return pred, best, preval[:, best]
