"""The synthetic world: every input of the pipeline, in the real formats, with planted truth.

:func:`generate_world` writes a folder (atomically: it appears complete or not at all)::

    world.json                     config, seed, engine version, file list, summary figures
    genes.parquet                  gene, gene_id, chromosome, start, end
    gene_corr.parquet              genes × genes correlation R (first column ``gene``)
    pathways.gmt                   gene sets (GMT)
    expression/part-*.parquet      genes × samples expression Y, in blocks of samples
    smultixcan/<trait>-smultixcan.txt   S-MultiXcan-style results, one TSV per trait
    spredixcan/<tissue>/part-*.parquet  signed S-PrediXcan-style z, genes × traits per tissue
    drugs/signatures.parquet       genes × drugs signatures (first column ``gene``)
    drugs/gold_standard.tsv        drug, disease, label
    trait_disease.tsv              trait, disease
    twas/                          SNP-level TWAS inputs in the real formats, for one trait:
                                   models/TW_<tissue>.db (PredictDB), covariances/TW_<tissue>
                                   .txt.gz, ld.txt.gz (LD reference), genes.tsv,
                                   gwas/<trait>.tsv.gz (GWAS summary statistics)
    truth/                         the planted truth (see :class:`World.truth`)

Everything is deterministic by ``seed``: each component draws from its own random stream,
and blocks of samples/traits from their own sub-streams, so generating in blocks (to stay
within memory at the ``full`` scale) gives the same numbers as any other run with that seed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .._version import __version__
from ..errors import InputError, InputFileNotFoundError
from ..io import (
    atomic_dir,
    iter_matrix_parts,
    read_gene_sets,
    read_matrix,
    read_table,
    write_gmt,
    write_matrix,
    write_table,
)
from ..progress import track
from .config import WorldConfig, world_config
from .genome import LDFactor, ld_factor, make_genes

FORMAT = "gpu_engine.world/1"
_STREAMS = {"genome": 1, "pathways": 2, "modules": 3, "gene_params": 4, "expression": 5,
            "trait_design": 6, "traits": 7, "tissue_models": 8, "drugs": 9, "twas": 10}

# GTEx v8 tissue names (the 49 tissues of the MASHR models), used to name synthetic tissues.
GTEX_TISSUES = (
    "Adipose_Subcutaneous", "Adipose_Visceral_Omentum", "Adrenal_Gland", "Artery_Aorta",
    "Artery_Coronary", "Artery_Tibial", "Brain_Amygdala",
    "Brain_Anterior_cingulate_cortex_BA24", "Brain_Caudate_basal_ganglia",
    "Brain_Cerebellar_Hemisphere", "Brain_Cerebellum", "Brain_Cortex", "Brain_Frontal_Cortex_BA9",
    "Brain_Hippocampus", "Brain_Hypothalamus", "Brain_Nucleus_accumbens_basal_ganglia",
    "Brain_Putamen_basal_ganglia", "Brain_Spinal_cord_cervical_c-1", "Brain_Substantia_nigra",
    "Breast_Mammary_Tissue", "Cells_Cultured_fibroblasts", "Cells_EBV-transformed_lymphocytes",
    "Colon_Sigmoid", "Colon_Transverse", "Esophagus_Gastroesophageal_Junction",
    "Esophagus_Mucosa", "Esophagus_Muscularis", "Heart_Atrial_Appendage", "Heart_Left_Ventricle",
    "Kidney_Cortex", "Liver", "Lung", "Minor_Salivary_Gland", "Muscle_Skeletal", "Nerve_Tibial",
    "Ovary", "Pancreas", "Pituitary", "Prostate", "Skin_Not_Sun_Exposed_Suprapubic",
    "Skin_Sun_Exposed_Lower_leg", "Small_Intestine_Terminal_Ileum", "Spleen", "Stomach",
    "Testis", "Thyroid", "Uterus", "Vagina", "Whole_Blood",
)
SMULTIXCAN_COLUMNS = ("gene", "gene_name", "pvalue", "n", "n_indep", "p_i_best", "t_i_best",
                      "p_i_worst", "t_i_worst", "eigen_max", "eigen_min", "eigen_min_kept",
                      "z_min", "z_max", "z_mean", "z_sd", "tmi", "status")


def _rng(seed: int, stream: str, block: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), _STREAMS[stream], int(block)])


def tissue_names(n: int) -> list[str]:
    """The first ``n`` GTEx tissue names, then ``Tissue_50``… if more are asked for."""
    return list(GTEX_TISSUES[:n]) + [f"Tissue_{i + 1}" for i in range(len(GTEX_TISSUES), n)]


def generate_world(out: str | os.PathLike, *, scale: str = "small", seed: int = 0,
                   config: WorldConfig | None = None, overwrite: bool = False,
                   progress: bool = False) -> World:
    """Generate a synthetic world into folder ``out`` and return it as a :class:`World`.

    ``scale`` is ``small``, ``medium`` or ``full`` (see :data:`~gpu_engine.datasets.SCALES`);
    ``config`` overrides it entirely. An existing ``out`` is an error unless ``overwrite``.
    """
    cfg = config or world_config(scale)
    cfg.validate()
    with atomic_dir(out, overwrite=overwrite) as tmp:
        _Builder(cfg, seed, scale if config is None else "custom", Path(tmp), progress).run()
    return World(out)


class _Builder:
    """Generates one world into ``root``; each step keeps only what later steps need."""

    def __init__(self, cfg: WorldConfig, seed: int, scale: str, root: Path, progress: bool):
        self.cfg, self.seed, self.scale, self.root, self.progress = cfg, seed, scale, root, progress
        self.stats: dict = {}

    def run(self) -> None:
        steps = [self.genome, self.pathways, self.modules, self.expression, self.trait_design,
                 self.traits, self.twas, self.drugs, self.manifest]
        for step in track(steps, "world", total=len(steps), enabled=self.progress):
            step()

    # ------------------------------------------------------------------ genome and R
    def genome(self) -> None:
        cfg, rng = self.cfg, _rng(self.seed, "genome")
        self.genes = make_genes(cfg.n_genes, rng, cfg.gene_spacing_mb)
        self.ld: LDFactor = ld_factor(self.genes, rng, window_mb=cfg.ld_window_mb,
                                      decay_mb=cfg.ld_decay_mb,
                                      source_spacing_mb=cfg.source_spacing_mb,
                                      strength=cfg.ld_strength)
        write_table(self.genes.drop(columns="mid_mb"), self.root / "genes.parquet")
        R = self.ld.correlation()
        off = R.size - len(R)
        self.stats["gene_corr_offdiag_nonzero_fraction"] = float((np.count_nonzero(R) - len(R))
                                                                 / off)
        names = self.genes["gene"].to_numpy()
        write_matrix(pd.DataFrame(R, index=pd.Index(names, name="gene"), columns=names),
                     self.root / "gene_corr.parquet")

    # ------------------------------------------------------------------ gene sets
    def pathways(self) -> None:
        cfg, rng = self.cfg, _rng(self.seed, "pathways")
        lo, hi = cfg.pathway_size_range
        hi = max(lo, min(hi, cfg.n_genes // 4))
        sizes = np.clip(np.round(rng.lognormal(np.log(40), 0.8, cfg.n_pathways)), lo, hi)
        names = self.genes["gene"].to_numpy()
        self.pathway_members = [np.sort(rng.choice(cfg.n_genes, int(s), replace=False))
                                for s in sizes]
        self.pathway_names = [f"SYN_PATHWAY_{i + 1:04d}" for i in range(cfg.n_pathways)]
        write_gmt({n: names[m] for n, m in zip(self.pathway_names, self.pathway_members)},
                  self.root / "pathways.gmt",
                  descriptions=dict.fromkeys(self.pathway_names, "synthetic_pathway"))

    # ------------------------------------------------------------------ modules (true Z)
    def modules(self) -> None:
        cfg, rng = self.cfg, _rng(self.seed, "modules")
        n_annot = int(round(cfg.annotated_fraction * cfg.n_modules))
        order = rng.permutation(cfg.n_pathways)
        big = [p for p in order if len(self.pathway_members[p]) >= 20]
        big_set = set(big)
        chosen = (big + [p for p in order if p not in big_set])[:n_annot]
        Z = np.zeros((cfg.n_genes, cfg.n_modules))
        rows = []
        lo, hi = cfg.module_size_range
        hi = max(lo, min(hi, cfg.n_genes // 4))
        for m in range(cfg.n_modules):
            if m < n_annot:
                p = chosen[m]
                members = self.pathway_members[p]
                keep = rng.choice(members, max(10, int(round(rng.uniform(0.5, 0.9)
                                                               * len(members)))), replace=False)
                outside = np.setdiff1d(np.arange(cfg.n_genes), members)
                extra = rng.choice(outside, max(2, int(round(0.1 * len(keep)))), replace=False)
                genes = np.concatenate([keep, extra])
                pathway, n_pw = self.pathway_names[p], len(keep)
            else:
                size = int(np.clip(round(rng.lognormal(np.log(60), 0.6)), lo, hi))
                genes = rng.choice(cfg.n_genes, size, replace=False)
                pathway, n_pw = "", 0
            Z[genes, m] = rng.gamma(2.0, 0.5, size=len(genes))
            rows.append({"module": f"M{m + 1:04d}", "pathway": pathway, "annotated": m < n_annot,
                         "n_genes": len(genes), "n_pathway_genes": n_pw})
        self.module_names = [r["module"] for r in rows]
        self.Z = Z
        (self.root / "truth").mkdir()
        write_table(pd.DataFrame(rows), self.root / "truth" / "modules.parquet")
        write_matrix(self._frame(Z, self.module_names), self.root / "truth" / "Z.parquet")

    def _frame(self, values, columns) -> pd.DataFrame:
        return pd.DataFrame(values, index=pd.Index(self.genes["gene"].to_numpy(), name="gene"),
                            columns=list(columns))

    # ------------------------------------------------------------------ expression Y
    def expression(self) -> None:
        cfg, rng = self.cfg, _rng(self.seed, "gene_params")
        offset = rng.uniform(2.0, 10.0, cfg.n_genes)[:, None]
        scale = rng.lognormal(0.0, 0.25, cfg.n_genes)[:, None]
        (self.root / "expression").mkdir()
        (self.root / "truth" / "B").mkdir()
        n_blocks = math.ceil(cfg.n_samples / cfg.sample_block)
        for b in track(range(n_blocks), "expression", total=n_blocks, enabled=self.progress):
            lo = b * cfg.sample_block
            hi = min(lo + cfg.sample_block, cfg.n_samples)
            brng = _rng(self.seed, "expression", b)
            B = brng.standard_t(4, (cfg.n_modules, hi - lo))
            E = brng.standard_normal((cfg.n_genes, hi - lo))
            Y = offset + scale * (self.Z @ B + cfg.expression_noise * E)
            samples = [f"S{i + 1:06d}" for i in range(lo, hi)]
            write_matrix(self._frame(Y, samples),
                         self.root / "expression" / f"part-{b:05d}.parquet")
            write_matrix(pd.DataFrame(B.astype(np.float32),
                                      index=pd.Index(self.module_names, name="module"),
                                      columns=samples),
                         self.root / "truth" / "B" / f"part-{b:05d}.parquet")

    # ------------------------------------------------------------------ traits: design
    def trait_design(self) -> None:
        cfg, rng = self.cfg, _rng(self.seed, "trait_design")
        n_null = int(round(cfg.null_fraction * cfg.n_traits))
        self.trait_names = [f"trait_{i + 1:04d}" for i in range(cfg.n_traits)]
        is_null = np.zeros(cfg.n_traits, bool)
        is_null[rng.choice(cfg.n_traits, n_null, replace=False)] = True
        active = np.flatnonzero(~is_null)
        if len(active) < cfg.n_trait_clusters:
            raise ValueError("fewer non-null traits than trait clusters; lower null_fraction")
        cluster = np.full(cfg.n_traits, -1)
        cluster[active] = np.concatenate([np.arange(cfg.n_trait_clusters),
                                          rng.integers(0, cfg.n_trait_clusters,
                                                       len(active) - cfg.n_trait_clusters)])
        cluster[active] = rng.permutation(cluster[active])
        cmods = rng.choice(cfg.n_modules, (cfg.n_trait_clusters, cfg.modules_per_cluster),
                           replace=False)
        csign = rng.choice([-1.0, 1.0], cmods.shape)
        effects = np.zeros((cfg.n_modules, cfg.n_traits))
        lo, hi = cfg.trait_effect_range
        for t in active:
            c = cluster[t]
            use = rng.uniform(size=cfg.modules_per_cluster) < 0.85
            use[rng.integers(cfg.modules_per_cluster)] = True
            for m, s in zip(cmods[c][use], csign[c][use]):
                effects[m, t] = s * rng.uniform(lo, hi)
            if rng.uniform() < 0.25:
                m = rng.integers(cfg.n_modules)
                if effects[m, t] == 0:
                    effects[m, t] = rng.choice([-1.0, 1.0]) * rng.uniform(lo, (lo + hi) / 2)
        self.is_null, self.cluster, self.effects = is_null, cluster, effects
        self.cluster_modules, self.cluster_signs = cmods, csign
        # gene-level signal profile of a module: full effect on genes loading at least the
        # module's median loading (its top genes), proportionally less below
        med = np.array([np.median(col[col > 0]) for col in self.Z.T])
        self.profile = np.minimum(self.Z / med, 1.0)
        # tissue models: which tissues predict each gene, and S-MultiXcan-like n / n_indep
        trng = _rng(self.seed, "tissue_models")
        n_t = cfg.n_tissues
        n = 1 + trng.binomial(n_t - 1, 0.4, cfg.n_genes)
        models = np.zeros((cfg.n_genes, n_t), bool)
        for g in range(cfg.n_genes):
            models[g, trng.choice(n_t, n[g], replace=False)] = True
        n_indep = 1 + trng.binomial(n - 1, 0.35)
        self.models, self.n_models, self.n_indep = models, n, n_indep
        self.tissue_rho = trng.uniform(0.5, 0.95, n_t)
        self.tissues = tissue_names(n_t)
        self.eigen = _tissue_spectra(n, n_indep, trng)
        self.tmi = self.eigen.pop("_tmi")
        rows = [{"trait": tr, "is_null": bool(is_null[i]), "cluster": int(cluster[i])}
                for i, tr in enumerate(self.trait_names)]
        self.trait_table = pd.DataFrame(rows)
        nz = np.argwhere(effects.T != 0)
        write_table(pd.DataFrame({"trait": np.array(self.trait_names)[nz[:, 0]],
                                  "module": np.array(self.module_names)[nz[:, 1]],
                                  "effect": effects.T[nz[:, 0], nz[:, 1]]}),
                    self.root / "truth" / "trait_modules.parquet")
        write_table(pd.DataFrame({
            "cluster": np.repeat(np.arange(cfg.n_trait_clusters), cfg.modules_per_cluster),
            "module": np.array(self.module_names)[cmods.ravel()],
            "sign": csign.ravel()}), self.root / "truth" / "clusters.parquet")

    # ------------------------------------------------------------------ traits: statistics
    def traits(self) -> None:
        cfg = self.cfg
        genes = self.genes
        (self.root / "smultixcan").mkdir()
        for t in self.tissues:
            (self.root / "spredixcan" / t).mkdir(parents=True)
        n_blocks = math.ceil(cfg.n_traits / cfg.trait_block)
        tissue_arr = np.array(self.tissues, dtype=object)
        for b in track(range(n_blocks), "traits", total=n_blocks, enabled=self.progress):
            lo = b * cfg.trait_block
            hi = min(lo + cfg.trait_block, cfg.n_traits)
            rng = _rng(self.seed, "traits", b)
            names = self.trait_names[lo:hi]
            z = self.profile @ self.effects[:, lo:hi] + self.ld.sample(hi - lo, rng)
            # per-tissue signed z: a tissue sees the gene-level z with its own noise
            zt = np.full((len(self.tissues), cfg.n_genes, hi - lo), np.nan, np.float32)
            for k, tissue in enumerate(self.tissues):
                rho = self.tissue_rho[k]
                rows = self.models[:, k]
                zt[k, rows] = (rho * z[rows] + math.sqrt(1 - rho ** 2)
                               * self.ld.sample(hi - lo, rng)[rows])
                write_matrix(pd.DataFrame(zt[k, rows], index=pd.Index(
                    genes["gene"].to_numpy()[rows], name="gene"), columns=names),
                    self.root / "spredixcan" / tissue / f"part-{b:05d}.parquet")
            pvalue = 2 * ndtr(-np.abs(z))
            absz = np.where(np.isnan(zt), -np.inf, np.abs(zt))
            best = absz.argmax(axis=0)
            worst = np.where(np.isnan(zt), np.inf, np.abs(zt)).argmin(axis=0)
            z_best = np.take_along_axis(zt, best[None], axis=0)[0]
            z_worst = np.take_along_axis(zt, worst[None], axis=0)[0]
            for j, trait in enumerate(names):
                table = pd.DataFrame({
                    "gene": genes["gene_id"], "gene_name": genes["gene"],
                    "pvalue": pvalue[:, j], "n": self.n_models, "n_indep": self.n_indep,
                    "p_i_best": 2 * ndtr(-np.abs(z_best[:, j])),
                    "t_i_best": tissue_arr[best[:, j]],
                    "p_i_worst": 2 * ndtr(-np.abs(z_worst[:, j])),
                    "t_i_worst": tissue_arr[worst[:, j]],
                    **self.eigen,
                    "z_min": np.nanmin(zt[:, :, j], axis=0),
                    "z_max": np.nanmax(zt[:, :, j], axis=0),
                    "z_mean": np.nanmean(zt[:, :, j], axis=0),
                    "z_sd": np.nanstd(zt[:, :, j], axis=0),
                    "tmi": self.tmi,
                    "status": 0,
                })[list(SMULTIXCAN_COLUMNS)]
                table = table.sort_values("pvalue", kind="stable")  # as MetaXcan writes them
                write_table(table, self.root / "smultixcan" / f"{trait}-smultixcan.txt")
        self.stats["n_null_traits"] = int(self.is_null.sum())

    # ------------------------------------------------------------------ drugs
    # ------------------------------------------------------------------ TWAS inputs
    def twas(self) -> None:
        """SNP-level inputs (models, covariances, LD, GWAS) for the first non-null trait: its
        GWAS carries, for each gene, twice the trait's planted gene-level signal (modules'
        effects × profile) through the gene's tissue models (``truth/twas_genes.parquet``)."""
        if not self.cfg.twas:
            return
        from .twas import make_twas_world, write_twas_world

        trait = int(np.flatnonzero(~self.is_null)[0])
        signal = self.profile @ self.effects[:, trait]
        tw = make_twas_world(genes=self.genes, tissues=self.tissues,
                             seed=self.seed * 1000 + _STREAMS["twas"])
        ids = self.genes["gene_id"].to_numpy()
        # γ = 2 × signal: with a few small models per gene, the planted signal of a module's
        # fringe genes would otherwise be below what one GWAS can detect
        effects = {g: 2.0 * float(v) for g, v in zip(ids, signal) if abs(v) >= 0.5}
        root = write_twas_world(tw, self.root / "twas", effects=effects, gwas_seed=self.seed)
        name = self.trait_names[trait]
        (root / "gwas" / "gwas.tsv.gz").rename(root / "gwas" / f"{name}.tsv.gz")
        write_table(pd.DataFrame({"gene_id": ids, "gene": self.genes["gene"].to_numpy(),
                                  "trait": name, "signal": signal,
                                  "causal": np.abs(signal) >= 0.5}),
                    self.root / "truth" / "twas_genes.parquet")
        self.stats["twas_causal_genes"] = len(effects)

    def drugs(self) -> None:
        cfg, rng = self.cfg, _rng(self.seed, "drugs")
        diseases = [f"DIS{c + 1:03d}" for c in range(cfg.n_trait_clusters)]
        active = np.flatnonzero(~self.is_null)
        mapped = active[rng.uniform(size=len(active)) < cfg.disease_fraction]
        self.trait_table["disease"] = ""
        self.trait_table.loc[mapped, "disease"] = [diseases[c] for c in self.cluster[mapped]]
        write_table(self.trait_table.loc[mapped, ["trait", "disease"]],
                    self.root / "trait_disease.tsv")
        write_table(self.trait_table, self.root / "truth" / "traits.parquet")

        drugs = [f"DB{i + 1:05d}" for i in range(cfg.n_drugs)]
        lo, hi = cfg.drug_effect_range
        targets = []  # (drug index, module, direction, strength)
        for d in range(cfg.n_drugs):
            if rng.uniform() < cfg.targeted_drug_fraction:
                c = rng.integers(cfg.n_trait_clusters)
                k = rng.integers(cfg.modules_per_cluster)
                sign = self.cluster_signs[c, k]
                direction = -sign if rng.uniform() < 0.75 else sign
                targets.append((d, int(self.cluster_modules[c, k]), direction, rng.uniform(lo, hi)))
                if rng.uniform() < 0.5:
                    targets.append((d, int(rng.integers(cfg.n_modules)),
                                    rng.choice([-1.0, 1.0]), rng.uniform(lo, hi)))
            else:
                for m in rng.choice(cfg.n_modules, rng.integers(1, 3), replace=False):
                    targets.append((d, int(m), rng.choice([-1.0, 1.0]), rng.uniform(lo, hi)))
        effect = np.zeros((cfg.n_modules, cfg.n_drugs))
        for d, m, direction, strength in targets:
            effect[m, d] += direction * strength
        signatures = self.profile @ effect + rng.standard_normal((cfg.n_genes, cfg.n_drugs))
        # drug signatures cover most, not all, genes (as LINCS L1000 vs TWAS genes)
        keep = np.sort(rng.choice(cfg.n_genes, int(round(0.95 * cfg.n_genes)), replace=False))
        keep = rng.permutation(keep)
        (self.root / "drugs").mkdir()
        write_matrix(pd.DataFrame(signatures[keep], index=pd.Index(
            self.genes["gene"].to_numpy()[keep], name="gene"), columns=drugs),
            self.root / "drugs" / "signatures.parquet")
        write_table(pd.DataFrame([{"drug": drugs[d], "module": self.module_names[m],
                                   "direction": direction, "strength": s}
                                  for d, m, direction, s in targets]),
                    self.root / "truth" / "drug_modules.parquet")
        # gold standard: 1 where the drug reverses a causal module of the disease
        gold = []
        for c, disease in enumerate(diseases):
            signs = dict(zip(self.cluster_modules[c].tolist(), self.cluster_signs[c]))
            for d in range(cfg.n_drugs):
                touched = [(m, effect[m, d]) for m in signs if effect[m, d] != 0]
                if any(np.sign(e) == -signs[m] for m, e in touched):
                    gold.append((drugs[d], disease, 1))
                elif touched:
                    gold.append((drugs[d], disease, 0))
        gold = pd.DataFrame(gold, columns=["drug", "disease", "label"])
        n_pos = int(gold["label"].sum())
        need = max(0, int(round(cfg.gold_negative_ratio * n_pos)) - int((gold["label"] == 0).sum()))
        pairs = set(zip(gold["drug"], gold["disease"]))
        unrelated = [(dr, di, 0) for di in diseases for dr in drugs if (dr, di) not in pairs]
        if need and unrelated:
            pick = rng.choice(len(unrelated), min(need, len(unrelated)), replace=False)
            gold = pd.concat([gold, pd.DataFrame([unrelated[i] for i in sorted(pick)],
                                                 columns=gold.columns)], ignore_index=True)
        write_table(gold, self.root / "drugs" / "gold_standard.tsv")
        self.stats["gold_standard_positives"] = n_pos
        self.stats["gold_standard_negatives"] = int((gold["label"] == 0).sum())

    # ------------------------------------------------------------------ manifest
    def manifest(self) -> None:
        files = sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                       if p.is_file())
        doc = {
            "format": FORMAT, "engine_version": __version__, "scale": self.scale,
            "seed": self.seed, "config": self.cfg.to_dict(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "traits": self.trait_names, "tissues": self.tissues,
            "stats": self.stats, "files": files,
        }
        with open(self.root / "world.json", "w") as fh:
            json.dump(doc, fh, indent=1)


def _tissue_spectra(n: np.ndarray, n_indep: np.ndarray, rng: np.random.Generator) -> dict:
    """Per-gene eigenvalues of a tissue-correlation matrix consistent with ``n``, ``n_indep``.

    S-MultiXcan keeps the components with eigenvalue ≥ max/30; we build a spectrum with
    exactly ``n_indep`` such components (ratios below 30) and the rest below max/30, scaled to
    sum to ``n`` (the trace of an n × n correlation matrix). Returns the columns
    ``eigen_max``, ``eigen_min``, ``eigen_min_kept`` and ``_tmi`` (Σ 1/λ over kept ones).
    """
    out = {k: np.empty(len(n)) for k in ("eigen_max", "eigen_min", "eigen_min_kept", "_tmi")}
    for g, (ng, k) in enumerate(zip(n, n_indep)):
        kept = np.sort(rng.uniform(1 / 29, 1.0, k))[::-1]
        kept[0] = 1.0
        dropped = rng.uniform(1 / 1000, 1 / 31, ng - k)
        lam = np.concatenate([kept, dropped])
        lam *= ng / lam.sum()
        out["eigen_max"][g] = lam[0]
        out["eigen_min"][g] = lam.min()
        out["eigen_min_kept"][g] = lam[:k].min()
        out["_tmi"][g] = (1 / lam[:k]).sum()
    return out


class World:
    """A world folder written by :func:`generate_world`, with typed readers for each part."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest = self.path / "world.json"
        if not manifest.exists():
            raise InputFileNotFoundError(
                f"{self.path} is not a synthetic world (no world.json); create one with "
                "`gpu-engine world --out DIR`")
        with open(manifest) as fh:
            self.manifest = json.load(fh)
        if self.manifest.get("format") != FORMAT:
            raise InputError(f"{manifest}: unknown world format {self.manifest.get('format')!r}")

    def __repr__(self) -> str:
        c = self.config
        return (f"World({str(self.path)!r}, scale={self.manifest['scale']!r}, "
                f"seed={self.seed}, genes={c.n_genes}, samples={c.n_samples}, "
                f"traits={c.n_traits}, modules={c.n_modules})")

    @cached_property
    def config(self) -> WorldConfig:
        cfg = dict(self.manifest["config"])
        for k, v in cfg.items():
            if isinstance(v, list):
                cfg[k] = tuple(v)
        return WorldConfig(**cfg)

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def traits(self) -> list[str]:
        return list(self.manifest["traits"])

    @property
    def tissues(self) -> list[str]:
        return list(self.manifest["tissues"])

    # inputs, in the real formats
    def genes(self) -> pd.DataFrame:
        return read_table(self.path / "genes.parquet")

    def gene_corr(self) -> pd.DataFrame:
        return read_matrix(self.path / "gene_corr.parquet", what="gene correlation")

    def gene_sets(self) -> dict[str, list[str]]:
        return read_gene_sets(self.path / "pathways.gmt")

    def expression(self) -> pd.DataFrame:
        return read_matrix(self.path / "expression", what="expression")

    def iter_expression(self):
        return iter_matrix_parts(self.path / "expression", what="expression")

    @property
    def twas_path(self) -> Path:
        """``twas/``: models/, covariances/, ld.txt.gz, genes.tsv, gwas/<trait>.tsv.gz."""
        p = self.path / "twas"
        if not p.is_dir():
            raise InputFileNotFoundError(f"{self.path}: this world has no TWAS inputs "
                                         "(generated with twas=False or an older version)")
        return p

    def smultixcan_path(self, trait: str) -> Path:
        return self.path / "smultixcan" / f"{trait}-smultixcan.txt"

    def smultixcan(self, trait: str) -> pd.DataFrame:
        return read_table(self.smultixcan_path(trait), what="S-MultiXcan result")

    def trait_pvalues(self) -> pd.DataFrame:
        """Genes (symbols) × traits S-MultiXcan p-values gathered from the per-trait files."""
        cols = {t: self.smultixcan(t).set_index("gene_name")["pvalue"] for t in self.traits}
        return pd.DataFrame(cols).rename_axis("gene")

    def spredixcan(self, tissue: str) -> pd.DataFrame:
        return read_matrix(self.path / "spredixcan" / tissue, what=f"S-PrediXcan z ({tissue})",
                           dtype=np.float32)

    def drug_signatures(self) -> pd.DataFrame:
        return read_matrix(self.path / "drugs" / "signatures.parquet", what="drug signatures")

    def gold_standard(self) -> pd.DataFrame:
        return read_table(self.path / "drugs" / "gold_standard.tsv", what="gold standard")

    def trait_disease(self) -> pd.DataFrame:
        return read_table(self.path / "trait_disease.tsv", what="trait-disease map")

    # the planted truth
    def truth(self, name: str) -> pd.DataFrame:
        """A truth table: ``modules`` (module, pathway, annotated, n_genes, n_pathway_genes),
        ``Z`` (genes × modules loadings), ``B`` (modules × samples scores), ``traits`` (trait,
        is_null, cluster, disease), ``trait_modules`` (trait, module, signed effect),
        ``clusters`` (cluster, module, sign), ``drug_modules`` (drug, module, direction,
        strength), ``twas_genes`` (gene_id, gene, trait, signal, causal: the planted
        gene-level signal of the trait whose GWAS is under ``twas/``)."""
        base = self.path / "truth"
        if name == "Z":
            return read_matrix(base / "Z.parquet", what="true loadings")
        if name == "B":
            return read_matrix(base / "B", what="true sample scores", dtype=np.float32)
        path = base / f"{name}.parquet"
        if not path.exists():
            raise InputError(f"unknown truth table {name!r}; choose one of modules, Z, B, "
                             "traits, trait_modules, clusters, drug_modules, twas_genes")
        return read_table(path)
