"""Drug repurposing scores at the reference's scale: ours vs a straightforward pandas
implementation like the reference's (per tissue and k: top-k masking of each trait's z, a
DataFrame dot product, ``DataFrame.rank``; mean over k, max over tissues).

Sizes: ``quick`` 200 drugs × 500 traits × 5 tissues × 2,000 genes (100 LVs); ``full`` the
reference: 1,170 drugs (LINCS L1000 consensus signatures, 7,120 genes) × 4,091 traits × 49
tissues × 5 k, gene space (each tissue tests ~6,400 of 7,500 genes) and module space (987 LVs,
the projection of drugs and of each tissue's z included in our time). PhenoPLIER's code took
about 2 hours per method. Target: under 2 minutes on 2 CPU cores, under 5 s on one H100.

A third case scores module space from projections computed beforehand (untimed), as the
reference's module-based step read them. The baseline runs one tissue and is extrapolated ×
tissues; ``max_abs_diff`` compares that
tissue's rank matrix with ours on the same tissue (0 = identical ranks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gpu_engine.benchmarking import Case

SIZES = {"quick": dict(drugs=200, traits=500, tissues=5, genes=2000, lvs=100),
         "full": dict(drugs=1170, traits=4091, tissues=49, genes=7500, lvs=987)}


def make_inputs(drugs, traits, tissues, genes, lvs, seed=0):
    rng = np.random.default_rng(seed)
    names = np.array([f"G{i:05d}" for i in range(genes)], dtype=object)
    sig_genes = np.sort(rng.choice(genes, int(0.95 * genes), replace=False))
    D = pd.DataFrame(rng.normal(size=(len(sig_genes), drugs)), index=names[sig_genes],
                     columns=[f"DB{j:05d}" for j in range(drugs)])
    base = rng.normal(size=(genes, traits)).astype(np.float32)
    trait_names = [f"trait{j:04d}" for j in range(traits)]
    subsets = [np.sort(rng.choice(genes, int(0.85 * genes), replace=False))
               for _ in range(tissues)]

    def tissue(t):
        return lambda: pd.DataFrame(base[subsets[t]], index=names[subsets[t]],
                                    columns=trait_names)

    Z = {f"tissue{t:02d}": tissue(t) for t in range(tissues)}
    L = np.abs(rng.normal(size=(genes, lvs))) * (rng.uniform(size=(genes, lvs)) < 0.1)
    lv = pd.DataFrame(L, index=names, columns=[f"LV{i + 1}" for i in range(lvs)])
    return D, Z, lv


def pandas_reference(D: pd.DataFrame, z: pd.DataFrame, top_k) -> pd.DataFrame:
    """One tissue, the reference's way: drugs × traits mean rank over k."""
    z = z.fillna(0.0)
    common = z.index.intersection(D.index, sort=False)
    zc, Dc = z.loc[common], D.loc[common]
    ranks = []
    for k in top_k:
        if k == "all":
            zk = zc
        else:
            keep = zc.abs().rank(ascending=False, method="first") <= k
            zk = zc.where(keep, 0.0)
        ranks.append((-Dc.T.dot(zk)).rank())
    return sum(ranks) / len(ranks)


def cases(size: str, backend) -> list[Case]:
    from gpu_engine.drugs import GENE_TOP_K, MODULE_TOP_K, score
    from gpu_engine.plier import LVModel

    p = SIZES[size]
    D, Z, lv = make_inputs(**p)
    model = LVModel(lv, L2=1.0, backend=backend.name)
    first = next(iter(Z))
    shape = {k: v for k, v in p.items() if k != "lvs"}
    out = []
    for space, top_k in (("gene", GENE_TOP_K), ("module", MODULE_TOP_K)):
        kw = {"lv_model": model} if space == "module" else {}

        def baseline(space=space, top_k=top_k):
            z = Z[first]()
            if space == "module":
                return pandas_reference(model.transform(D), model.transform(z), top_k)
            return pandas_reference(D, z, top_k)

        def ours(space=space, top_k=top_k, kw=kw):
            return score(D, Z, space=space, top_k=top_k, backend=backend, **kw)

        def check(ref, _, space=space, top_k=top_k, kw=kw):
            one = score(D, {first: Z[first]}, space=space, top_k=top_k, backend=backend, **kw)
            return float(np.abs(one.drug_trait.to_numpy() - ref.to_numpy()).max())

        out.append(Case(f"{space} space, {backend.name} vs pandas",
                        {**shape, "lvs": p["lvs"]} if space == "module" else shape,
                        baseline, ours, "pandas per tissue and k [extrapolated × tissues]",
                        f"gpu_engine {backend.name}", backend.name, check,
                        {"top_k": [str(k) for k in top_k],
                         "reference": "PhenoPLIER: about 2 hours per method"},
                        baseline_scale=float(p["tissues"]), repeats=1,
                        warmup=0 if size == "full" else None))

    # module space from projections computed beforehand, as the reference's step read them
    Lp = model.transform(D)
    Zp = {t: model.transform(f()) for t, f in Z.items()}

    def base_proj():
        return pandas_reference(Lp, Zp[first], MODULE_TOP_K)

    def ours_proj():
        return score(Lp, Zp, space="module", backend=backend)

    def check_proj(ref, _):
        one = score(Lp, {first: Zp[first]}, space="module", backend=backend)
        return float(np.abs(one.drug_trait.to_numpy() - ref.to_numpy()).max())

    out.append(Case(f"module space, projections given, {backend.name} vs pandas",
                    {**shape, "lvs": p["lvs"]}, base_proj, ours_proj,
                    "pandas per tissue and k [extrapolated × tissues]",
                    f"gpu_engine {backend.name}", backend.name, check_proj,
                    {"top_k": [str(k) for k in MODULE_TOP_K],
                     "inputs": "LVs × drugs and LVs × traits per tissue, projected beforehand"},
                    baseline_scale=float(p["tissues"]), repeats=1,
                    warmup=0 if size == "full" else None))
    return out
