"""The stages of ``gpu-engine run``, each a thin call of the same public API the single
commands use (no second implementation).

A :class:`Stage` declares when it runs (:meth:`Stage.plan`: the inputs it needs, or why it is
skipped), the stages it reads (``needs``), the input files and the parameters that make its
fingerprint, and ``run(ctx)``, which writes into ``ctx.out`` (a temporary folder renamed
when the stage succeeds) and returns its counts. Long stages write one chunk per trait
through ``ctx.chunk``: a run killed in the middle resumes without redoing finished chunks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config

log = logging.getLogger("gpu_engine.pipeline")


@dataclass
class StageContext:
    """What a running stage gets: the config, its output folder, the folders of the stages
    it needs, the backend name, the run's Dask client (or None), and ``chunk(name)``, a
    context manager yielding a temporary folder for one chunk (None when the chunk is already
    done; see :mod:`.runner`)."""

    cfg: Config
    out: Path
    upstream: dict[str, Path]
    backend: str | None
    client: object | None
    chunk: Callable
    progress: bool | str = False


@dataclass
class Stage:
    name: str
    title: str
    run: Callable[[StageContext], dict]
    needs: Callable[[Config], list[str]]
    files: Callable[[Config], list[Path]]
    params: Callable[[Config], dict]
    requires: Callable[[Config], str | None]  # None: can run; else why not
    chunked: bool = False
    doc: str = ""
    extra: dict = field(default_factory=dict)


def _checkpoint(ctx: StageContext, name: str) -> Path:
    """The folder where a long library call of this stage saves its finished blocks (the
    ensemble's members, the null batches, each tissue's drug scores): inside the stage's
    temporary folder, which the runner keeps across a kill and clears when the stage's
    fingerprint changes."""
    return ctx.out / ".checkpoints" / name


def _drop_checkpoints(ctx: StageContext) -> None:
    import shutil

    shutil.rmtree(ctx.out / ".checkpoints", ignore_errors=True)


def _stage_params(cfg: Config, name: str, speed_only=()) -> dict:
    """The stage's parameters for its fingerprint (``speed_only``: keys that change how fast
    it runs, never its results, left out so that changing them re-runs nothing)."""
    p = getattr(cfg.stages, name).model_dump(mode="json")
    p.pop("enabled", None)
    for k in speed_only:
        p.pop(k, None)
    p["backend"] = p.get("backend") or cfg.backend
    return p


# ----------------------------------------------------------------------------- TWAS
def _trained(cfg: Config) -> list[str]:
    """The expression_models stage's model sets that join the run's tissues."""
    return list(cfg.stages.spredixcan.trained_models)


def _trained_tissue(cfg: Config, kind: str) -> str:
    """The tissue name of a trained model set: the elastic net's is the expression models'
    ``tissue``, the CNN's ``<tissue>_cnn``."""
    t = cfg.inputs.expression_models.tissue
    return t if kind == "en" else f"{t}_{kind}"


def _twas_needs(cfg: Config) -> list[str]:
    return ["expression_models"] if _trained(cfg) else []


def _twas_missing(cfg: Config) -> str | None:
    i = cfg.inputs
    need = ["gwas"] + ([] if _trained(cfg) else ["models", "covariances"])
    missing = [k for k in need if getattr(i, k) is None]
    return f"needs inputs {', '.join(missing)}" if missing else None


def _has_ld(cfg: Config) -> bool:
    return cfg.inputs.ld is not None or bool(_trained(cfg))


def _model_paths(cfg: Config, upstream: dict[str, Path]) -> dict[str, tuple[Path, Path, str]]:
    """Tissue → (database, SNP covariance, snp_key): the given models (``inputs.models`` and
    ``inputs.covariances``, matched by tissue) and the trained ones
    (``stages.spredixcan.trained_models``, from the expression_models stage's folder)."""
    from ..twas import model_files

    out: dict[str, tuple[Path, Path, str]] = {}
    m, cov = cfg.inputs.models, cfg.inputs.covariances
    if m is not None:
        covs = model_files(cov.folder, cov.pattern) if cov is not None else {}
        for t, f in model_files(m.folder, m.pattern).items():
            out[t] = (f, covs.get(t), m.snp_key)
    for kind in _trained(cfg):
        folder, t = upstream["expression_models"] / kind, _trained_tissue(cfg, kind)
        if t in out:
            from ..errors import InputError

            raise InputError(f"the trained {kind} models' tissue {t!r} is also a tissue of "
                             f"inputs.models ({m.folder}); give inputs.expression_models.tissue "
                             "another name")
        out[t] = (folder / "models.db", folder / "covariance.txt.gz", "rsid")
    return out


def _models(ctx: StageContext, paths: dict | None = None) -> dict:
    """Tissue → model of :func:`_model_paths` (``paths`` when already listed)."""
    from ..twas import read_model_db

    paths = paths if paths is not None else _model_paths(ctx.cfg, ctx.upstream)
    return {t: read_model_db(db, tissue=t, snp_key=key) for t, (db, _, key) in paths.items()}


def _ld(ctx: StageContext):
    """The LD reference: ``inputs.ld``, or the expression_models stage's ``ld.txt.gz`` (the
    cohort's SNP covariance over each gene's trained-model SNPs)."""
    from ..twas import read_covariance

    return read_covariance(ctx.cfg.inputs.ld if ctx.cfg.inputs.ld is not None else
                           ctx.upstream["expression_models"] / "ld.txt.gz")


def _gwas_files(cfg: Config) -> dict[str, Path]:
    from ..twas import model_files

    g = cfg.inputs.gwas
    return model_files(g.folder, g.pattern, what="GWAS", key="trait")


def run_spredixcan(ctx: StageContext) -> dict:
    """S-PrediXcan for every trait × tissue; each GWAS is read once (restricted to the
    models' SNPs) and every tissue computed from it. One chunk per trait:
    ``<trait>/<tissue>.csv`` (MetaXcan's format) and the trait's harmonization report; plus
    ``z/<tissue>.parquet`` (genes × traits z-scores by gene symbol, what the drugs stage
    reads)."""
    from ..io import write_table
    from ..twas import (
        GwasColumns,
        read_gwas,
        spredixcan_tissues,
        write_spredixcan,
    )

    cfg = ctx.cfg
    paths = _model_paths(cfg, ctx.upstream)
    models = _models(ctx, paths)
    covs = {t: c for t, (_, c, _) in paths.items() if c is not None}
    snps = set().union(*(set(m.weights["snp"]) for m in models.values()))
    cols = GwasColumns(**cfg.inputs.gwas.columns)
    traits = _gwas_files(cfg)
    timing = {"parse_s": 0.0, "compute_s": 0.0, "write_s": 0.0, "computed_traits": 0}
    cache = _CovarianceCache(models, covs, 0 if ctx.client is not None or len(traits) < 2
                             else cfg.stages.spredixcan.cache_covariances_gib)
    for trait, path in traits.items():
        with ctx.chunk(trait) as tmp:
            if tmp is None:
                continue
            t0 = time.perf_counter()
            gwas = read_gwas(path, cols, snps=snps)
            t1 = time.perf_counter()
            res, report = spredixcan_tissues(models, cache.covariances(), gwas,
                                             backend=ctx.backend, client=ctx.client)
            t2 = time.perf_counter()
            for t, r in res.items():
                write_spredixcan(r, tmp / f"{t}.csv")
            _z_columns(res).to_parquet(tmp / "z.parquet")
            write_table(report.assign(trait=trait), tmp / "report.tsv")
            timing["parse_s"] += t1 - t0
            timing["compute_s"] += t2 - t1
            timing["write_s"] += time.perf_counter() - t2
            timing["computed_traits"] += 1
    log.info("S-PrediXcan: %d traits computed; GWAS parsing %.1f s, S-PrediXcan %.1f s, "
             "writing %.1f s", timing["computed_traits"], timing["parse_s"],
             timing["compute_s"], timing["write_s"])
    _write_z(ctx.out, list(traits))
    return {"traits": len(traits), "tissues": len(models),
            "covariances_cached": len(cache.blocks),
            "covariance_cache_gib": round(cache.used / 2**30, 3)} | timing


def _z_columns(res: dict) -> pd.DataFrame:
    """One trait's S-PrediXcan z by gene symbol: genes (sorted) × tissues, a gene without a
    z in a tissue NaN there, the first row of a duplicated symbol kept."""
    parts = []
    for t, r in res.items():
        r = r.dropna(subset=["zscore"]).drop_duplicates("gene_name")
        parts.append((t, r["gene_name"].to_numpy(dtype=object), r["zscore"].to_numpy(float)))
    every = np.concatenate([g for _, g, _ in parts]) if parts else np.array([], dtype=object)
    genes = pd.Index(np.sort(pd.unique(every)), name="gene")  # hash first: 20 k, not 1 M, sorted
    Z = np.full((len(genes), len(parts)), np.nan)
    for j, (_, g, z) in enumerate(parts):
        Z[genes.get_indexer(g), j] = z
    return pd.DataFrame(Z, index=genes, columns=[t for t, _, _ in parts])


def _write_z(out: Path, traits: list[str], budget_gib: float = 1.0) -> None:
    """``z/<tissue>.parquet`` (genes × traits, genes sorted) from the traits' ``z.parquet``.
    Tissues are assembled in groups whose matrices fit in ``budget_gib`` (49 tissues × 4,000
    traits × 20,000 genes at once would be 31 GB); each trait's file is read once per group.
    A trait chunk written without ``z.parquet`` is read from its CSV files."""
    import pyarrow.parquet as pq

    from ..io import atomic_path

    names: dict[str, list[str]] = {}
    rows = 1
    for trait in traits:
        f = out / trait / "z.parquet"
        if not f.exists():
            res = {c.stem: pd.read_csv(c) for c in sorted((out / trait).glob("*.csv"))}
            _z_columns(res).to_parquet(f)
        meta = pq.read_metadata(f)
        rows = max(rows, meta.num_rows)
        names[trait] = [c for c in meta.schema.names if c != "gene"]
    tissues = sorted(set().union(*names.values())) if names else []
    group = max(1, int(budget_gib * 2**30 // (8 * rows * max(1, len(traits)))))
    (out / "z").mkdir(exist_ok=True)
    for g0 in range(0, len(tissues), group):
        grp = tissues[g0:g0 + group]
        acc: dict[str, dict] = {t: {} for t in grp}
        for trait in traits:
            have = [t for t in grp if t in names[trait]]
            if have:
                z = pd.read_parquet(out / trait / "z.parquet", columns=have)
                for t in have:
                    acc[t][trait] = z[t].dropna()
        for t in grp:
            with atomic_path(out / "z" / f"{t}.parquet") as tmp:
                pd.DataFrame(acc[t]).sort_index().rename_axis("gene").to_parquet(tmp)


class _CovarianceCache:
    """Each tissue's SNP covariance (only its model's genes) read once per run and kept for
    the next traits, while the blocks kept stay within ``gib`` GiB; tissues beyond it are
    read again per trait (inside S-PrediXcan, as without a cache). The results do not
    depend on it."""

    def __init__(self, models: dict, paths: dict, gib: float):
        self.models, self.paths = models, paths
        self.budget, self.used = gib * 2**30, 0
        self.blocks: dict = {}
        self.full = gib <= 0

    def covariances(self) -> dict:
        from ..twas import read_covariance

        if not self.full:
            for t, path in self.paths.items():
                if t in self.blocks:
                    continue
                b = read_covariance(path, genes=self.models[t].genes)
                size = b.values.nbytes + 100 * b.snps.size + 64 * len(b.genes)
                if self.used + size > self.budget:
                    self.full = True
                    break
                self.blocks[t], self.used = b, self.used + size
        return {t: self.blocks.get(t, p) for t, p in self.paths.items()}


def run_smultixcan(ctx: StageContext) -> dict:
    """S-MultiXcan per trait from the spredixcan stage (one chunk per trait:
    ``<trait>-smultixcan.txt``, the format `gpu-engine gls` reads)."""
    from ..twas import GwasColumns, read_gwas, smultixcan, write_smultixcan

    cfg = ctx.cfg
    models = _models(ctx)
    ld = _ld(ctx)
    snps = set().union(*(set(m.weights["snp"]) for m in models.values()))
    cols = GwasColumns(**cfg.inputs.gwas.columns)
    sp_dir = ctx.upstream["spredixcan"]
    traits = _gwas_files(cfg)
    for trait, path in traits.items():
        with ctx.chunk(trait) as tmp:
            if tmp is None:
                continue
            sp = {f.stem: pd.read_csv(f) for f in sorted((sp_dir / trait).glob("*.csv"))}
            gwas = read_gwas(path, cols, snps=snps)
            res = smultixcan(models, ld, sp, gwas=gwas, backend=ctx.backend,
                             condition_number=cfg.stages.smultixcan.cutoff_condition_number)
            write_smultixcan(res, tmp / f"{trait}-smultixcan.txt")
    return {"traits": len(traits)}


def run_gene_corr(ctx: StageContext) -> dict:
    """Gene–gene correlations from the models and the LD reference (``gene_corr/``, the
    condensed form, labelled by gene symbol)."""
    from ..io import read_table
    from ..twas import gene_correlations

    cfg, p = ctx.cfg, ctx.cfg.stages.gene_corr
    models = _models(ctx)
    genes = read_table(cfg.inputs.genes, what="gene table") if cfg.inputs.genes else None
    if genes is None and _trained(cfg):
        genes = read_table(cfg.inputs.expression_models.genes, what="gene table")
    gc = gene_correlations(models, _ld(ctx), genes=genes,
                           within_mb=p.within_mb, condition_number=p.condition_number,
                           backend=ctx.backend, client=ctx.client)
    gc.save(ctx.out / "gene_corr", labels="gene_name")
    return {"genes": len(gc.genes)}


# ---------------------------------------------------------------------------- modules
def run_plier(ctx: StageContext) -> dict:
    """PLIER on the expression compendium with the prior gene sets (``model/``)."""
    from ..io import read_matrix
    from ..io.gene_sets import gene_sets_to_matrix, read_gene_sets
    from ..plier import PLIER

    cfg, p = ctx.cfg, ctx.cfg.stages.plier
    Y = read_matrix(cfg.inputs.expression, what="expression")
    priors = [gene_sets_to_matrix(read_gene_sets(f), genes=Y.index) for f in cfg.inputs.priors]
    prior = pd.concat(priors, axis=1) if len(priors) > 1 else priors[0]
    prior = prior.loc[:, ~prior.columns.duplicated()]
    model = PLIER(k=p.k, max_iter=p.max_iter, seed=p.seed, backend=ctx.backend,
                  progress=ctx.progress).fit(Y, prior)
    model.save(ctx.out / "model", overwrite=True)
    return {"genes": int(Y.shape[0]), "samples": int(Y.shape[1]),
            "lvs": int(model.Z_.shape[1])}


def _lv_model(ctx: StageContext):
    from ..lvmodel import load_lv_model

    path = ctx.upstream["plier"] / "model" if "plier" in ctx.upstream else ctx.cfg.inputs.lv_model
    return load_lv_model(path, l2=ctx.cfg.inputs.lv_l2 if "plier" not in ctx.upstream
                         else None, backend=ctx.backend)


def smultixcan_files(cfg: Config, computed: Path | None) -> dict[str, Path]:
    """Trait → S-MultiXcan file: the given folder's (``inputs.smultixcan``), then the
    smultixcan stage's in ``computed`` (which replace a given file of the same trait)."""
    from ..twas import model_files

    files: dict[str, Path] = {}
    given = cfg.inputs.smultixcan
    if given is not None:
        files.update(model_files(given.folder, given.pattern, what="S-MultiXcan",
                                 key="trait"))
    if computed is not None:
        for p in sorted(computed.glob("*/*-smultixcan.txt")):
            files[p.name[:-len("-smultixcan.txt")]] = p
    return dict(sorted(files.items()))


def _smultixcan_folders(ctx: StageContext) -> list[Path]:
    return list(smultixcan_files(ctx.cfg, ctx.upstream.get("smultixcan")).values())


def run_gls(ctx: StageContext) -> dict:
    """PhenoPLIER's GLS of every LV with every trait (``gls.parquet``; with ``conditional``
    also ``gls_conditional.parquet``; with ``null_calibration`` also ``null/``)."""
    from ..gls import associate, null_calibration, read_smultixcan
    from ..gls.association import pool_results
    from ..twas.gene_corr import read_gene_corr

    cfg, p = ctx.cfg, ctx.cfg.stages.gls
    model = _lv_model(ctx)
    smx = read_smultixcan(_smultixcan_folders(ctx))
    gc_path = ctx.upstream["gene_corr"] / "gene_corr" if "gene_corr" in ctx.upstream else \
        cfg.inputs.gene_corr
    R = read_gene_corr(gc_path)
    traits = list(smx.pvalue.columns)
    parts = []
    for k in range(0, len(traits), p.trait_chunk):  # one checkpoint per chunk of traits
        name = f"chunk_{k // p.trait_chunk:05d}"
        with ctx.chunk(name) as tmp:
            if tmp is not None:
                part = associate(model.Z, smx.pvalue[traits[k:k + p.trait_chunk]], R,
                                 mode=p.mode, predictor=p.predictor, backend=ctx.backend,
                                 client=ctx.client)
                pd.DataFrame(part).to_parquet(tmp / "gls.parquet")
        parts.append(pd.read_parquet(ctx.out / name / "gls.parquet"))
    res = pool_results(parts, traits)
    out = {"lvs": int(model.Z.shape[1]), "traits": len(smx.traits)}
    Z = model.Z
    if p.null_calibration is not None:
        nc = p.null_calibration
        cal = null_calibration(Z, R, n_null=nc.n_null, mode=p.mode, predictor=p.predictor,
                               seed=nc.seed, backend=ctx.backend, client=ctx.client,
                               checkpoint=_checkpoint(ctx, "null"), batch=nc.batch)
        cal.save(ctx.out / "null")
        flagged = set(cal.table.loc[cal.table["inflated"], "lv"].astype(str))
        out["lvs_inflated"] = len(flagged)
        if nc.exclude_inflated and flagged:
            # PhenoPLIER's way: the flagged LVs leave the table, FDR over the rest
            res.save(ctx.out / "gls_all_lvs.parquet")
            t = pd.DataFrame(res)
            res = pool_results([t.loc[~t["lv"].astype(str).isin(flagged)]], traits)
            Z = Z[[c for c in Z.columns if str(c) not in flagged]]
            out["lvs_excluded"] = len(flagged)
    res.save(ctx.out / "gls.parquet")
    out["significant_fdr_0.05"] = int((res["fdr"] < 0.05).sum())
    if p.conditional:  # one call: the conditioning LVs are those significant over all pairs
        cond = associate(Z, smx.pvalue, R, mode=p.mode, predictor=p.predictor,
                         condition_on="significant", condition_predictor="continuous",
                         backend=ctx.backend, client=ctx.client)
        cond.save(ctx.out / "gls_conditional.parquet")
    _drop_checkpoints(ctx)
    return out


def run_lv_genes(ctx: StageContext) -> dict:
    """What each significant LV means (``gpu-engine lv genes``): the core genes of every
    significant LV–trait pair with the trait's own TWAS p (``core_genes.parquet``) and the
    per-trait module gene scores beside the TWAS ranks (``gene_scores.parquet``)."""
    from ..gls import read_smultixcan
    from ..lv_analysis import core_genes, gene_scores

    p = ctx.cfg.stages.lv_genes
    Z = _lv_model(ctx).Z
    P = read_smultixcan(_smultixcan_folders(ctx)).pvalue
    gls = pd.read_parquet(ctx.upstream["gls"] / "gls.parquet").astype({"lv": str,
                                                                        "trait": str})
    core = core_genes(gls, Z, P, fdr=p.fdr, top_fraction=p.top_fraction)
    core.save(ctx.out / "core_genes.parquet")
    scores = gene_scores(gls, Z, P, fdr=p.fdr)
    scores.save(ctx.out / "gene_scores.parquet")
    c = pd.DataFrame(core)
    return {"pairs": int(c[["lv", "trait"]].drop_duplicates().shape[0]) if len(c) else 0,
            "core_genes": len(c),
            "module_only": int(c["module_only"].sum()) if len(c) else 0,
            "traits_scored": int(pd.DataFrame(scores)["trait"].nunique())}


def _sample_scores(ctx: StageContext) -> tuple[pd.DataFrame | None, str]:
    """B (LVs × samples) for the sample contexts, and where it came from: the plier stage's
    fit, a given model folder's ``B.parquet``, or the projection of ``inputs.expression``
    onto the given model (MultiPLIER's way); None when there is none of them."""
    from ..io import read_matrix

    cfg = ctx.cfg
    if "plier" in ctx.upstream:
        return read_matrix(ctx.upstream["plier"] / "model" / "B.parquet", what="B"), "PLIER fit"
    given = cfg.inputs.lv_model
    if given is not None and given.is_dir() and (given / "B.parquet").exists():
        return read_matrix(given / "B.parquet", what="B"), f"{given}/B.parquet"
    if cfg.inputs.expression is not None:
        Y = read_matrix(cfg.inputs.expression, what="expression")
        return _lv_model(ctx).transform(Y), "projection of inputs.expression"
    return None, ""


def run_lv_enrich(ctx: StageContext) -> dict:
    """What the LVs are enriched for (``gpu-engine lv enrich`` / ``lv context``): every gene
    set of ``inputs.gene_sets`` tested in every LV (``gene_sets.parquet``: the set's name in
    ``gene_set``, FDR over the LVs within each set), and the sample attributes of
    ``inputs.sample_metadata`` over-represented among each LV's top samples by B
    (``contexts.parquet``)."""
    from ..io import read_table, write_table
    from ..io.gene_sets import read_gene_sets
    from ..lv_analysis import context_enrichment, gene_set_enrichment

    cfg, p = ctx.cfg, ctx.cfg.stages.lv_enrich
    out: dict = {}
    if cfg.inputs.gene_sets:
        Z = _lv_model(ctx).Z
        tables, missing = [], []
        for f in cfg.inputs.gene_sets:
            for name, genes in read_gene_sets(f).items():
                if not Z.index.isin(list(genes)).any():
                    missing.append(name)
                    continue
                r = pd.DataFrame(gene_set_enrichment(Z, genes, name=name))
                tables.append(r.assign(gene_set=name, source=f.name))
        if missing:
            log.warning("lv_enrich: %d gene set(s) share no gene with the LV model and are "
                        "left out: %s", len(missing), ", ".join(missing[:5]))
        if not tables:
            from ..errors import InputError

            raise InputError(f"inputs.gene_sets: no set shares a gene with the LV model "
                             f"({', '.join(str(f) for f in cfg.inputs.gene_sets)}); use the "
                             "model's gene identifiers")
        t = pd.concat(tables, ignore_index=True)
        t = t[["gene_set", *[c for c in t.columns if c not in ("gene_set", "source")],
               "source"]]
        write_table(t, ctx.out / "gene_sets.parquet")
        out |= {"gene_sets": int(t["gene_set"].nunique()),
                "set_lv_pairs_fdr_0.05": int((t["fdr"] < 0.05).sum())}
    if cfg.inputs.sample_metadata is not None:
        B, source = _sample_scores(ctx)
        if B is None:
            log.warning("lv_enrich: no sample scores B (no PLIER fit, no B.parquet in the "
                        "given model, no inputs.expression to project); the sample contexts "
                        "are not tested")
        else:
            meta = read_table(cfg.inputs.sample_metadata, what="sample metadata")
            meta = meta.set_index(meta.columns[0])
            c = context_enrichment(B, meta, attributes=p.attributes, top_fraction=p.top_fraction,
                                   min_samples=p.min_samples)
            c.save(ctx.out / "contexts.parquet")
            out |= {"context_tests": len(c), "contexts_fdr_0.05": int((c["fdr"] < 0.05).sum()),
                    "b_source": source}
    return out


def run_cluster(ctx: StageContext) -> dict:
    """Traits in module space (Z-weighted sums of standardised −log10 p): a clustering
    ensemble, the EAC/SCC consensus and its selection, the driving LVs (``ensemble/``,
    ``consensus/``, ``labels.parquet``, ``stumps.parquet``)."""
    from ..cluster import ClusterEnsemble, ClusterInterpreter, consensus
    from ..gls import read_smultixcan
    from ..io import write_table

    p = ctx.cfg.stages.cluster
    Z = _lv_model(ctx).Z
    smx = read_smultixcan(_smultixcan_folders(ctx))
    P = smx.pvalue.reindex(Z.index).dropna(how="all")
    Y = -np.log10(P.clip(lower=1e-300).fillna(1.0))
    M = (Z.loc[Y.index].T @ ((Y - Y.mean()) / Y.std().replace(0, 1))).T
    gls = pd.read_parquet(ctx.upstream["gls"] / "gls.parquet")
    hit = sorted(set(gls.loc[gls["fdr"] < p.fdr, "trait"]))
    M = M.loc[hit] if len(hit) >= 3 else M
    k_max = max(2, min(p.k_max, len(M) - 1))
    ens = ClusterEnsemble(families=tuple(p.families), k_max=k_max, n_seeds=p.n_seeds,
                          family_size=p.family_size, agglomerative_k_max=k_max,
                          dbscan_min_samples_max=min(10, max(2, len(M) // 3)),
                          seed=p.seed).fit(M, client=ctx.client,
                                           checkpoint=_checkpoint(ctx, "ensemble"))
    ens.save(ctx.out / "ensemble")
    cons = consensus(ens.partitions_, k_range=range(2, k_max + 1), seed=p.seed,
                     backend=ctx.backend, objects=ens.objects_)
    cons.save(ctx.out / "consensus")
    labels = cons.labels()
    write_table(labels.rename("cluster").rename_axis("trait").reset_index(),
                ctx.out / "labels.parquet")
    stumps = ClusterInterpreter(max_features=3, max_explored=30).fit(
        M, labels.to_numpy()).stumps_
    write_table(stumps, ctx.out / "stumps.parquet")
    _drop_checkpoints(ctx)
    return {"traits": int(len(M)), "members": int(len(ens.partitions_)),
            "clusters": int(labels.nunique())}


def run_drugs(ctx: StageContext) -> dict:
    """Drug–disease scores in gene and module space against the gold standard
    (``<space>/scores`` and ``<space>/evaluation``)."""
    from ..drugs import evaluate, score
    from ..io import read_matrix, read_table

    cfg, p = ctx.cfg, ctx.cfg.stages.drugs
    d = cfg.inputs.drugs
    D = read_matrix(d.signatures, what="drug signatures")
    folder = d.spredixcan if d.spredixcan is not None else ctx.upstream["spredixcan"] / "z"
    tissues = sorted(x for x in folder.iterdir() if not x.name.startswith("."))
    Zt = {x.name.removesuffix(".parquet"):
          (lambda x=x: read_matrix(x, what=f"S-PrediXcan z ({x.name})", dtype=np.float32))
          for x in tissues}
    td = read_table(d.trait_disease, what="trait-disease map")
    gold = read_table(d.gold_standard, what="gold standard")
    out = {"tissues": len(Zt), "drugs": int(D.shape[1])}
    for space in p.spaces:
        kw = ({"top_k": tuple(p.top_k)} if space == "gene" else {"lv_model": _lv_model(ctx)})
        s = score(D, Zt, space=space, trait_disease=td, backend=ctx.backend,
                  client=ctx.client, checkpoint=_checkpoint(ctx, space), **kw)
        ev = evaluate(s, gold, n_permutations=p.n_permutations, seed=p.seed)
        s.save(ctx.out / space / "scores")
        ev.save(ctx.out / space / "evaluation")
        out[f"{space}_auc"] = float(ev.auc)
        out[f"{space}_ap"] = float(ev.ap)
    _drop_checkpoints(ctx)
    return out


def run_decode(ctx: StageContext) -> dict:
    """DEcode (``model/``, ``attribution/``, ``association.parquet`` with the regulators'
    expression; ``modules/`` — each LV explained by its regulators — with
    ``explain_modules``)."""
    from ..decode import data as D
    from ..decode.explain import explain_modules
    from ..decode.features import BindingMaps
    from ..decode.model import DEcode
    from ..io import read_matrix, read_table, write_table

    cfg, p, d = ctx.cfg, ctx.cfg.stages.decode, ctx.cfg.inputs.decode
    maps = BindingMaps.read(d.binding)
    T = D.tissue_targets(read_matrix(d.expression, what="DEcode expression", allow_nan=True))
    splits = (read_table(d.splits, what="DEcode splits") if d.splits is not None
              else D.chromosome_split(maps.genes, seed=p.seed))
    dev = "cuda" if str(ctx.backend) in ("gpu", "rapids") else None
    m = DEcode(restarts=p.restarts, epochs=p.epochs, patience=p.patience,
               min_genes=p.min_genes, random_state=p.seed, device=dev).fit(maps, T, splits)
    m.save(ctx.out / "model")
    att = m.attribute(maps)
    att.save(ctx.out / "attribution")
    out = {"genes": len(m.split_), "regulators": int(m.report_["regulators_kept"]),
           "test_spearman": float(m.evaluation_.set_index("output").loc[
               "mean_fold_change", "spearman"])}
    if d.regulator_expression is not None:
        a = att.association(read_matrix(d.regulator_expression, what="regulator expression"))
        write_table(a, ctx.out / "association.parquet")
        out["regulators_associated"] = int(a["significant"].sum())
    if p.explain_modules and ("plier" in ctx.upstream or cfg.inputs.lv_model is not None):
        Z = _lv_model(ctx).Z
        shared = int(Z.index.isin(set(maps.genes["gene"])).sum())
        out["module_genes_with_maps"] = shared
        if shared < 100:
            log.warning("DEcode: only %d genes of the LV model have binding maps (are the "
                        "gene ids of the same kind?); the modules are not explained", shared)
            return out
        ex = explain_modules(maps, Z, splits, permutations=p.permutations,
                             restarts=p.module_restarts, epochs=p.epochs, patience=p.patience,
                             min_genes=p.min_genes, random_state=p.seed, device=dev)
        ex.save(ctx.out / "modules")
        out["modules_explained"] = len(ex.columns)
    return out


def run_ccc(ctx: StageContext) -> dict:
    """CCC co-expression among the modules' top genes (the union of each LV's top
    ``lv_top_genes``, at most ``max_genes``) in the expression compendium: ``pairs.parquet``
    (gene_a, gene_b, ccc, shared_lvs: how many LVs have both among their top genes) and the
    mean CCC of pairs that share an LV against those that do not."""
    from ..ccc import ccc, pair_index
    from ..io import read_matrix, write_table

    p = ctx.cfg.stages.ccc
    Z = _lv_model(ctx).Z
    Y = read_matrix(ctx.cfg.inputs.expression, what="expression")
    Z = Z.loc[Z.index.intersection(Y.index)]
    top = {lv: set(Z[lv].nlargest(p.lv_top_genes).index) for lv in Z.columns}
    best = Z.max(axis=1)
    genes = sorted(set().union(*top.values()), key=lambda g: -best[g])[:p.max_genes]
    c = ccc(Y.loc[genes].to_numpy(), backend=ctx.backend, client=ctx.client)
    ij = pair_index(len(genes), 0, len(c))
    member = np.array([[g in top[lv] for lv in Z.columns] for g in genes])
    shared = (member[ij[:, 0]] & member[ij[:, 1]]).sum(axis=1)
    g = np.asarray(genes, dtype=object)
    t = pd.DataFrame({"gene_a": g[ij[:, 0]], "gene_b": g[ij[:, 1]], "ccc": c,
                      "shared_lvs": shared})
    write_table(t, ctx.out / "pairs.parquet")
    same = shared > 0
    return {"genes": len(genes), "pairs": int(len(t)),
            "mean_ccc_same_lv": float(c[same].mean()) if same.any() else float("nan"),
            "mean_ccc_other": float(c[~same].mean()) if (~same).any() else float("nan")}


def run_expression_models(ctx: StageContext) -> dict:
    """TWAS stage 1 (``gpu-engine expression train-en``): PredictDB's elastic net per gene,
    written as ``en/models.db`` and ``en/covariance.txt.gz`` for S-PrediXcan, with
    ``en/summary.parquet`` (every nested-CV column); with ``cnn`` also the dlfa CNN,
    exported through its linear projection (``cnn/``); and ``ld.txt.gz``, the cohort's SNP
    covariance per gene over the union of its model SNPs (the LD reference S-MultiXcan and
    the gene correlations use when ``stages.spredixcan.trained_models`` is set)."""
    from ..expression import ElasticNetPredictor, read_genotypes
    from ..io import read_matrix, read_table, write_table

    p, d = ctx.cfg.stages.expression_models, ctx.cfg.inputs.expression_models
    G = read_genotypes(d.genotypes)
    E = read_matrix(d.expression, what="expression", allow_nan=True)
    genes = read_table(d.genes, what="gene table")
    C = read_matrix(d.covariates, what="covariates") if d.covariates else None
    en = ElasticNetPredictor(alpha=p.alpha, window=p.window, maf=p.maf, seed=p.seed,
                             backend=ctx.backend).fit(G, E, genes, C)
    (ctx.out / "en").mkdir()
    written = en.write(ctx.out / "en" / "models.db", ctx.out / "en" / "covariance.txt.gz",
                       tissue=d.tissue)
    write_table(en.summary_, ctx.out / "en" / "summary.parquet")
    out = {"samples": int(en.report_["samples_used"]), "genes_trained": len(en.summary_),
           "genes_written": len(written),
           "median_rho_avg": float(en.summary_["rho_avg"].median())}
    if p.cnn:
        from ..expression.cnn_predictor import DLFAPredictor
        from ..expression.export import project_models, write_projection

        dev = "cuda" if str(ctx.backend) in ("gpu", "rapids") else "cpu"
        cnn = DLFAPredictor(restarts=p.cnn_restarts, top=1, epochs=p.cnn_epochs,
                            device=dev).fit(G, E, genes)
        summ = cnn.summary_.assign(test_pearson=cnn.summary_["test_pearson_best"])
        proj, weights, covs = project_models(cnn.gene_models("best"), cnn.snps_, G, summ)
        (ctx.out / "cnn").mkdir()
        write_projection(ctx.out / "cnn" / "models.db", ctx.out / "cnn" / "covariance.txt.gz",
                         proj, weights, covs, genes, n_samples=G.n_samples, tissue=d.tissue)
        write_table(proj, ctx.out / "cnn" / "projection.parquet")
        out["cnn_median_linear_r2"] = float(proj["linear_r2"].median())
    dbs = [ctx.out / k / "models.db" for k in ("en", "cnn") if (ctx.out / k).exists()]
    if len(written):  # S-MultiXcan's SNP covariance on the cohort, over every trained model set
        from ..expression.export import multixcan_covariance

        out["ld_genes"] = multixcan_covariance(ctx.out / "ld.txt.gz", G, dbs)
    return out


def _expression_models_requires(cfg: Config) -> str | None:
    if cfg.inputs.expression_models is None:
        return "needs inputs expression_models (genotypes, expression, genes)"
    if cfg.stages.expression_models.cnn:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "cnn: true needs torch (pip install 'gpu-engine[dl]')"
    return None


def _genotype_files(cfg: Config) -> list:
    d = cfg.inputs.expression_models
    if d is None:
        return []
    g = d.genotypes
    files = [g] if g.exists() else [g.with_name(g.name + s) for s in (".bed", ".bim", ".fam")]
    return files + [d.expression, d.genes] + ([d.covariates] if d.covariates else [])


def _decode_requires(cfg: Config) -> str | None:
    if cfg.inputs.decode is None:
        return "needs inputs decode (binding maps and tissue expression)"
    try:
        import torch  # noqa: F401
    except ImportError:
        return "needs torch (pip install 'gpu-engine[dl]')"
    return None


# ------------------------------------------------------------------------- registry
def _files(*getters):
    def f(cfg: Config):
        out = []
        for g in getters:
            v = g(cfg)
            if v is None:
                continue
            out.extend(v if isinstance(v, list) else [v])
        return [x for x in out if x is not None]
    return f


def _lv_needs(cfg: Config) -> list[str]:
    return [] if cfg.inputs.lv_model is not None else ["plier"]


def _lv_requires(cfg: Config) -> str | None:
    i = cfg.inputs
    if i.lv_model is None and (i.expression is None or not i.priors):
        return "needs inputs lv_model, or expression and priors (to fit PLIER)"
    return None


def _smx_needs(cfg: Config) -> list[str]:
    return ["smultixcan"] if _twas_missing(cfg) is None and _has_ld(cfg) and \
        cfg.stages.spredixcan.enabled and cfg.stages.smultixcan.enabled else []


def _gc_needs(cfg: Config) -> list[str]:
    if cfg.inputs.gene_corr is not None:
        return []
    return ["gene_corr"]


def _gene_corr_missing(cfg: Config) -> str | None:
    if _trained(cfg):
        return None
    return None if cfg.inputs.models and cfg.inputs.ld else "needs inputs models and ld"


def _gls_requires(cfg: Config) -> str | None:
    why = _lv_requires(cfg)
    if why:
        return why
    if cfg.inputs.smultixcan is None and not _smx_needs(cfg):
        return ("needs inputs smultixcan, or gwas, models, covariances and ld (to compute "
                "it)")
    if cfg.inputs.gene_corr is None and _gene_corr_missing(cfg):
        return "needs inputs gene_corr, or models and ld (to compute it)"
    return None


STAGES: list[Stage] = [
    Stage("expression_models", "expression models (TWAS stage 1)", run_expression_models,
          needs=lambda c: [], files=_genotype_files,
          params=lambda c: _stage_params(c, "expression_models") | {
              "tissue": c.inputs.expression_models and c.inputs.expression_models.tissue},
          requires=_expression_models_requires),
    Stage("spredixcan", "S-PrediXcan", run_spredixcan, needs=_twas_needs,
          files=_files(lambda c: c.inputs.gwas and c.inputs.gwas.folder,
                       lambda c: c.inputs.models and c.inputs.models.folder,
                       lambda c: c.inputs.covariances and c.inputs.covariances.folder),
          params=lambda c: _stage_params(c, "spredixcan", speed_only=(
              "cache_covariances_gib",)) | {
              "gwas": c.inputs.gwas and c.inputs.gwas.model_dump(mode="json",
                                                                 exclude={"folder"}),
              "models": c.inputs.models and c.inputs.models.model_dump(mode="json",
                                                                     exclude={"folder"}),
              "covariances_pattern": c.inputs.covariances and c.inputs.covariances.pattern},
          requires=_twas_missing, chunked=True),
    Stage("smultixcan", "S-MultiXcan", run_smultixcan,
          needs=lambda c: _twas_needs(c) + ["spredixcan"],
          files=_files(lambda c: c.inputs.ld, lambda c: c.inputs.gwas and c.inputs.gwas.folder),
          params=lambda c: _stage_params(c, "smultixcan"),
          requires=lambda c: _twas_missing(c) or (None if _has_ld(c) else "needs inputs ld"),
          chunked=True),
    Stage("gene_corr", "gene correlations", run_gene_corr, needs=_twas_needs,
          files=_files(lambda c: c.inputs.ld, lambda c: c.inputs.genes,
                       lambda c: c.inputs.models and c.inputs.models.folder),
          params=lambda c: _stage_params(c, "gene_corr") | {
              "trained_models": _trained(c)},
          requires=lambda c: _gene_corr_missing(c)
          if c.inputs.gene_corr is None else "inputs gene_corr given"),
    Stage("plier", "PLIER", run_plier, needs=lambda c: [],
          files=_files(lambda c: c.inputs.expression, lambda c: list(c.inputs.priors)),
          params=lambda c: _stage_params(c, "plier"),
          requires=lambda c: "inputs lv_model given" if c.inputs.lv_model is not None else
          (None if c.inputs.expression is not None and c.inputs.priors else
           "needs inputs expression and priors")),
    Stage("gls", "GLS association", run_gls,
          needs=lambda c: _lv_needs(c) + _smx_needs(c) + _gc_needs(c),
          files=_files(lambda c: c.inputs.lv_model, lambda c: c.inputs.gene_corr,
                       lambda c: c.inputs.smultixcan and c.inputs.smultixcan.folder),
          params=lambda c: _stage_params(c, "gls") | {"lv_l2": c.inputs.lv_l2,
                                                       "smultixcan_pattern":
                                                       c.inputs.smultixcan and
                                                       c.inputs.smultixcan.pattern},
          requires=_gls_requires),
    Stage("lv_genes", "core genes and gene scores", run_lv_genes,
          needs=lambda c: _lv_needs(c) + _smx_needs(c) + ["gls"],
          files=_files(lambda c: c.inputs.lv_model,
                       lambda c: c.inputs.smultixcan and c.inputs.smultixcan.folder),
          params=lambda c: _stage_params(c, "lv_genes"), requires=_gls_requires),
    Stage("lv_enrich", "LV enrichment", run_lv_enrich, needs=_lv_needs,
          files=_files(lambda c: c.inputs.lv_model, lambda c: list(c.inputs.gene_sets),
                       lambda c: c.inputs.sample_metadata,
                       lambda c: c.inputs.sample_metadata and c.inputs.expression),
          params=lambda c: _stage_params(c, "lv_enrich"),
          requires=lambda c: _lv_requires(c) or (
              None if c.inputs.gene_sets or c.inputs.sample_metadata else
              "needs inputs gene_sets or sample_metadata")),
    Stage("cluster", "trait clusters", run_cluster,
          needs=lambda c: _lv_needs(c) + _smx_needs(c) + ["gls"],
          files=_files(lambda c: c.inputs.lv_model,
                       lambda c: c.inputs.smultixcan and c.inputs.smultixcan.folder),
          params=lambda c: _stage_params(c, "cluster"), requires=_gls_requires),
    Stage("drugs", "drug repurposing", run_drugs,
          needs=lambda c: _lv_needs(c) + ([] if c.inputs.drugs and c.inputs.drugs.spredixcan
                                          else ["spredixcan"]),
          files=_files(lambda c: c.inputs.lv_model,
                       lambda c: c.inputs.drugs and [c.inputs.drugs.signatures,
                                                     c.inputs.drugs.gold_standard,
                                                     c.inputs.drugs.trait_disease,
                                                     c.inputs.drugs.spredixcan]),
          params=lambda c: _stage_params(c, "drugs"),
          requires=lambda c: _lv_requires(c) or (None if c.inputs.drugs else
                                                 "needs inputs drugs")),
    Stage("decode", "DEcode", run_decode,
          needs=lambda c: (_lv_needs(c) if c.stages.decode.explain_modules
                           and _lv_requires(c) is None else []),
          files=_files(lambda c: c.inputs.decode and [
              c.inputs.decode.binding, c.inputs.decode.expression, c.inputs.decode.splits,
              c.inputs.decode.regulator_expression], lambda c: c.inputs.lv_model),
          params=lambda c: _stage_params(c, "decode"), requires=_decode_requires),
    Stage("ccc", "CCC co-expression", run_ccc, needs=_lv_needs,
          files=_files(lambda c: c.inputs.expression, lambda c: c.inputs.lv_model),
          params=lambda c: _stage_params(c, "ccc"),
          requires=lambda c: _lv_requires(c) or (None if c.inputs.expression is not None
                                                 else "needs inputs expression")),
]
