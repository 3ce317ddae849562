"""S-PrediXcan: gene-level association from GWAS summary statistics, one tissue at a time.

For gene g the SNPs used are: in g's model ∩ the harmonized GWAS with finite z ∩ g's block of
the tissue covariance with a variance. With σ_i = √Γ_ii and w the model weights:

    var_g = wᵀΓw,   z_g = Σ w_i σ_i z_i / √var_g,   effect_size = Σ w_i σ_i² β_i / var_g,
    p = 2Φ(−|z_g|);

var_g ≤ 0 gives NaN. As the reference, a gene none of whose model SNPs is in the harmonized
finite-z GWAS is omitted; a gene with such SNPs but none of them in its covariance block (or
no block at all) gets a row of NA statistics with ``n_snps_used`` 0 (``n_snps_in_cov`` 0
without a block). All genes
of a tissue are computed at once: var_g by the segmented Gram kernel, the sums by
``bincount``. Output columns and order are MetaXcan's, rows sorted by p-value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..backend import Backend
from ..io.align import member
from ..results import TableResult, register
from .covariance import CovarianceBlocks
from .gwas import Gwas, harmonize
from .models import ModelDB
from .quadratic import gram, snp_table

COLUMNS = ("gene", "gene_name", "zscore", "effect_size", "pvalue", "var_g", "pred_perf_r2",
           "pred_perf_pval", "pred_perf_qval", "n_snps_used", "n_snps_in_cov", "n_snps_in_model")


@register
class SPrediXcanTable(TableResult):
    """One tissue's S-PrediXcan results (a DataFrame with MetaXcan's columns, sorted by p);
    ``attrs["report"]`` holds the harmonization and gene counts. ``save("x.csv")`` writes
    the reference's CSV (``NA`` for missing, integer counts; any name but ``.parquet``),
    ``save("x.parquet")`` Parquet
    with the report."""

    kind = "spredixcan"

    def _write_text(self, frame, path) -> None:
        from ..io import atomic_path

        out = frame.copy()
        for c in ("n_snps_used", "n_snps_in_cov", "n_snps_in_model"):
            out[c] = out[c].astype("Int64")
        with atomic_path(path) as tmp:  # CSV whatever the name, as the reference writes
            out.to_csv(tmp, index=False, na_rep="NA")


def empty_result() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("gene", "gene_name") else float)
                         for c in COLUMNS})


def spredixcan(model: ModelDB, covariance: CovarianceBlocks, gwas: Gwas | pd.DataFrame, *,
               harmonized: bool = False, additional: bool = False,
               backend: Backend | str | None = None,
               kernel: str | None = None) -> tuple[pd.DataFrame, dict]:
    """S-PrediXcan for one tissue.

    ``gwas``: a parsed :class:`Gwas` (it is harmonized against the model here) or, with
    ``harmonized=True``, a frame ``snp, zscore, beta`` already aligned to the model's
    effect alleles. ``additional`` appends the reference's ``--additional_output`` columns:
    ``best_gwas_p`` = 2Φ(−max |z|) and ``largest_weight`` = max |w| over the SNPs used.
    Returns ``(results, report)``; ``report`` holds the harmonization counts
    plus ``genes_in_model``, ``genes_tested``, ``genes_without_snps`` and ``empty_model``.
    """
    report = {"genes_in_model": len(model.extra), "empty_model": model.empty}
    if model.empty:
        report.update(genes_tested=0, genes_without_snps=0)
        return SPrediXcanTable.from_frame(empty_result(), report=report), report
    if harmonized:
        h = gwas.frame if isinstance(gwas, Gwas) else gwas
    else:
        h, hrep = harmonize(gwas, model.alleles(), finite_only=True)
        report.update(hrep)
    h = h.loc[np.isfinite(h["zscore"].to_numpy())].drop_duplicates("snp")
    genes = model.extra["gene"]
    tab = snp_table(covariance)
    tab = tab.loc[member(tab["gene"], genes.to_numpy())]
    w = tab.merge(model.weights[["gene", "snp", "weight"]], on=["gene", "snp"], how="inner")
    w = w.merge(h[["snp", "zscore", "beta"]], on="snp", how="inner")
    w = w.loc[np.isfinite(w["var"].to_numpy())]
    used_blocks = np.unique(w["block"].to_numpy())
    bpos = np.searchsorted(used_blocks, w["block"].to_numpy())
    nb = used_blocks.size
    var = np.concatenate([G.ravel() for G in gram(
        covariance, used_blocks, w["row"].to_numpy(), np.zeros(len(w), np.int64),
        w["weight"].to_numpy(), np.ones(nb, np.int64), backend=backend, kernel=kernel)]) \
        if nb else np.zeros(0)
    wt = w["weight"].to_numpy()
    sd = np.sqrt(w["var"].to_numpy())
    num = np.bincount(bpos, wt * sd * w["zscore"].to_numpy(), minlength=nb)
    eff = np.bincount(bpos, wt * sd * sd * w["beta"].to_numpy(), minlength=nb)
    n_used = np.bincount(bpos, minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = var > 0
        z = np.where(ok, num / np.sqrt(np.where(ok, var, 1.0)), np.nan)
        effect = np.where(ok, eff / np.where(ok, var, 1.0), np.nan)
    res = pd.DataFrame({"gene": covariance.genes[used_blocks], "zscore": z,
                        "effect_size": effect, "pvalue": 2.0 * special.ndtr(-np.abs(z)),
                        "var_g": var, "n_snps_used": n_used,
                        "n_snps_in_cov": covariance.n_in_cov[used_blocks]})
    # genes with a GWAS SNP but no usable covariance entry: NA rows, as the reference writes
    in_gwas = pd.unique(model.weights.loc[member(model.weights["snp"], h["snp"].to_numpy()),
                                          "gene"].to_numpy(dtype=object))
    na = in_gwas[~member(in_gwas, res["gene"].to_numpy(dtype=object))]
    if na.size:
        pos = np.array([covariance.index(g) if g in covariance else -1 for g in na])
        n_cov = np.where(pos >= 0, covariance.n_in_cov[np.maximum(pos, 0)], 0)
        res = pd.concat([res, pd.DataFrame({"gene": na, "n_snps_used": 0,
                                            "n_snps_in_cov": n_cov})], ignore_index=True)
    res = res.merge(model.extra, on="gene", how="left")
    res = res[list(COLUMNS)].sort_values("pvalue", kind="mergesort", na_position="last")
    if additional:
        best = pd.DataFrame({"gene": covariance.genes[used_blocks],
                             "best_gwas_p": 2.0 * special.ndtr(-_group_max(
                                 bpos, np.abs(w["zscore"].to_numpy()), nb)),
                             "largest_weight": _group_max(bpos, np.abs(wt), nb)})
        res = res.merge(best, on="gene", how="left")
    n_na = int(na.size)
    report.update(genes_tested=len(res) - n_na, genes_without_covariance=n_na,
                  genes_without_snps=int(len(genes) - len(res)))
    return SPrediXcanTable.from_frame(res.reset_index(drop=True), report=report), report


def _group_max(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    np.maximum.at(out, group, values)
    return out


def calibrate_phi(res: pd.DataFrame, phi: pd.DataFrame, n: float, h2: float) -> pd.DataFrame:
    """The reference's inflation calibration (``--gwas_N``, ``--gwas_h2``): genes with a
    model ``phi`` (NaN dropped, as the reference's inner join does; φ < 0 taken as 0) get
    z / √(1 + φ·N·h²) and its p; the uncalibrated values are kept in ``uncalibrated_pvalue``
    and ``uncalibrated_zscore``, after a ``phi`` column. Row order is kept."""
    from ..errors import InputError

    if not (np.isfinite(n) and n > 0 and np.isfinite(h2) and h2 >= 0):
        raise InputError(f"phi calibration needs N > 0 and h² ≥ 0 (--gwas_N {n:g}, --gwas_h2 "
                         f"{h2:g})")
    out = res.merge(phi[["gene", "phi"]].dropna(subset=["phi"]), on="gene", how="inner")
    out["uncalibrated_pvalue"] = out["pvalue"]
    out["uncalibrated_zscore"] = out["zscore"]
    f = np.maximum(out["phi"].to_numpy(np.float64), 0.0)
    out["zscore"] = out["zscore"].to_numpy() / np.sqrt(1.0 + f * n * h2)
    out["pvalue"] = 2.0 * special.ndtr(-np.abs(out["zscore"].to_numpy()))
    return out


def write_spredixcan(res: pd.DataFrame, path) -> None:
    """Write results as the reference does (CSV, ``NA`` for missing), atomically (the same
    as ``SPrediXcanTable(res).save(path)``)."""
    SPrediXcanTable.from_frame(res).save(path)


def _one_tissue(tissue, model, covariance, *, gwas, backend, additional=False):
    from .covariance import read_covariance

    cov = covariance if isinstance(covariance, CovarianceBlocks) else \
        read_covariance(covariance, genes=model.genes)
    res, rep = spredixcan(model, cov, gwas, additional=additional, backend=backend)
    return res, dict(rep, tissue=tissue)


def spredixcan_tissues(models, covariances, gwas: Gwas | pd.DataFrame, *,
                       backend: Backend | str | None = None, client=None,
                       additional: bool = False,
                       progress: bool = False) -> tuple[dict, pd.DataFrame]:
    """S-PrediXcan for many tissues from one parsed GWAS.

    ``models``: tissue → :class:`ModelDB`; ``covariances``: tissue → covariance file path (read
    in the task, only the model's genes) or :class:`CovarianceBlocks`. With a Dask ``client``
    tissues run as Dask tasks (the GWAS is broadcast once). Returns (tissue → results, one
    report row per tissue). Note: the GWAS's p = 0 replacement uses the rows read, so read it
    restricted to the union of the models' SNPs to match single-tissue runs.
    """
    from ..backend import get_backend
    from ..distributed import map_tasks

    be = get_backend(backend)
    tissues = [t for t in models if t in covariances]
    missing = sorted(set(models) - set(covariances))
    if missing:
        from ..errors import InputError

        raise InputError(f"no covariance for tissue(s) {missing[:5]}; give one per model")
    out = map_tasks(_one_tissue, [(t, models[t], covariances[t]) for t in tissues],
                    shared={"gwas": gwas, "backend": be.name, "additional": additional},
                    client=client,
                    progress=progress, description="S-PrediXcan tissues")
    return ({t: r for t, (r, _) in zip(tissues, out)},
            pd.DataFrame([rep for _, rep in out]))
