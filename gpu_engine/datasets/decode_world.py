"""A planted-regulator world for DEcode (spec ``decode.md`` §8), deterministic by seed.

Genes on 22 chromosomes (chromosome 1 ≈ 8.5 %: the test set), RNA lengths
L = clip(round(lognormal(log 26, 0.8)), 1, 260) bins, promoters of 30 bins; tissues in
groups of six. Regulators: TFs (promoter), RBPs and miRNAs (RNA); regulator r binds a gene
with probability π_r ~ U(0.05, 0.3), a bound gene gets 1–4 sites (miRNAs up to 3) at uniform
bins, each covering U{8…100} bases (miRNAs 7–8), capped at the bin's size.

Planted: ``drivers`` (4 TFs, 4 RBPs) with tissue activities a_r[t] (±1.5 on one or two
groups, plus N(0, 0.2²)) and a sign s_r; ``decoys`` (8, activities drawn, never used);
``shadows`` (4, binding correlated ≈ 0.5 with a driver's, no effect). With the binding load
B[g, r] = bound bases / 100 and φ(B) = 1 − e^(−B):

    E[g, t] = μ_g + Σ_drivers a_r[t]·φ(B[g, r]) + κ·a_r1[t]·φ(B[g, r1])·φ(B[g, r2])
              + 0.3·log(L_g)·c_t + ε[g, t],
    μ_g = 5 + Σ_drivers s_r·|b_r|·φ(B[g, r]) + N(0, baseline_sd²),

r1 the first TF driver, r2 the first RBP driver, κ = 1, c_t ~ N(0, 0.1²), ε ~ N(0, σ²) with σ
such that the planted part explains ``planted_fraction`` of the fold-change variance. The
regulators' own expression across tissues is s_r·a_r[t] + N(0, 0.3²) for drivers and decoys
(so activity alone cannot tell them apart) and N(0, 1) for the others. The co-expression pair
(A, B) — two chromosome-1 genes bound heavily by r1 (TF) and r3 (the second RBP driver), by
no other driver. Modules: LV k has two module regulators (one TF, one RBP, none planted
above, π ~ U(0.15, 0.3)) and loadings Z[g, k] = max(0, φ(B[g, m1]) + φ(B[g, m2]) − 0.4 + N(0, 0.15²)).

Written: ``binding/`` (:class:`~gpu_engine.decode.features.BindingMaps`),
``expression.parquet`` (gene + one log2 column per tissue), ``splits.parquet`` (gene, set),
``regulator_expression.parquet`` (regulator + tissues), ``modules/Z.parquet`` (gene + LVs),
``truth/regulators.parquet`` (name, type, role ∈ driver|decoy|shadow|module|none, sign,
shadow_of, module, activity per tissue), ``truth/contributions.parquet`` (gene × driver
planted contributions to the fold changes' variance), ``truth/world.json``.

Person level (``n_individuals`` > 0; spec §8 item 6; drawn from its own random stream, so the
tissue world is the same with or without it): N individuals of ``tissue01`` with driver
abundances q_r[n] ~ N(0, 1), a per-driver sign p_r = ±1 and three technical covariates
c[n] (RIN, rRNA and intronic rate, N(0, 1)) with gene loadings λ_g ~ N(0, 0.5²):

    E[g, n] = μ_g + Σ_drivers p_r·q_r[n]·φ(B[g, r]) + λ_g·c[n] + ε[g, n],

ε with σ such that the planted person part explains ``planted_fraction`` of its variance over
individuals. The drivers' own expression across individuals is q_r[n] + N(0, 0.3²), every
other regulator's N(0, 1). Written: ``persons/tpm.parquet`` (gene + one TPM column per
individual, 2^E − 0.25 clipped at 0), ``persons/covariates.parquet``,
``persons/regulator_expression.parquet``; the signs in ``truth/world.json`` (``persons``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

CHROM_WEIGHTS = np.array([249, 242, 198, 190, 181, 171, 159, 145, 138, 134, 135, 133, 114, 107,
                          102, 90, 83, 80, 59, 64, 47, 51], float)


def _sites(rng, bound: np.ndarray, lengths: np.ndarray, *, mirna: bool, width_of):
    """(gene, bin, bases) of one regulator's sites in the bound genes."""
    gs, bs, vs = [], [], []
    for g in np.flatnonzero(bound):
        k = rng.integers(1, 4 if mirna else 5)
        b = rng.integers(0, lengths[g], size=k)
        v = rng.integers(7, 9, size=k) if mirna else rng.integers(8, 101, size=k)
        gs.append(np.full(k, g))
        bs.append(b)
        vs.append(v)
    if not gs:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    g, b, v = np.concatenate(gs), np.concatenate(bs), np.concatenate(vs)
    frame = pd.DataFrame({"g": g, "b": b, "v": v}).groupby(["g", "b"], as_index=False)["v"].sum()
    cap = width_of(frame["g"].to_numpy(), frame["b"].to_numpy())
    return frame["g"].to_numpy(), frame["b"].to_numpy(), np.minimum(frame["v"].to_numpy(), cap)


def generate_decode_world(out, *, n_genes: int = 3000, n_tissues: int = 24, group_size: int = 6,
                          n_tf: int = 80, n_rbp: int = 40, n_mirna: int = 20,
                          n_modules: int = 3, kappa: float = 1.0, baseline_sd: float = 1.0,
                          planted_fraction: float = 0.5, n_individuals: int = 0,
                          seed: int = 0) -> Path:
    """Write the world into ``out`` (see the module docstring); returns ``out``."""
    from ..decode.data import chromosome_split
    from ..decode.features import MASKS, PROMOTER_BINS, BindingMaps

    rng = np.random.default_rng(seed)
    out = Path(out)
    G, T = int(n_genes), int(n_tissues)
    if T % group_size or T < 2 * group_size:
        raise ValueError("n_tissues must be a multiple of group_size, at least two groups")
    if min(n_tf, n_rbp) < 10 + n_modules:
        raise ValueError(f"n_tf and n_rbp must be ≥ {10 + n_modules} (4 drivers, 4 decoys, 2 "
                         f"shadows and {n_modules} module regulators of each kind)")
    genes = np.array([f"G{i:05d}" for i in range(G)])
    chrom = rng.choice(np.arange(1, 23), size=G, p=CHROM_WEIGHTS / CHROM_WEIGHTS.sum())
    L = np.clip(np.round(rng.lognormal(np.log(26), 0.8, size=G)), 1, 260).astype(int)
    W = L * 100 - rng.integers(0, 100, size=G)  # transcript length in bases
    n_groups = T // group_size
    tissues = [f"tissue{t + 1:02d}" for t in range(T)]
    group = np.repeat(np.arange(n_groups), group_size)

    names = ([f"TF{i + 1:03d}" for i in range(n_tf)] + [f"RBP{i + 1:03d}" for i in range(n_rbp)]
             + [f"MIR{i + 1:03d}" for i in range(n_mirna)])
    types = ["TF"] * n_tf + ["RBP"] * n_rbp + ["miRNA"] * n_mirna
    R = len(names)
    tf, rbp = np.arange(n_tf), np.arange(n_tf, n_tf + n_rbp)
    perm_tf, perm_rbp = rng.permutation(tf), rng.permutation(rbp)
    drivers = np.concatenate([perm_tf[:4], perm_rbp[:4]])
    decoys = np.concatenate([perm_tf[4:8], perm_rbp[4:8]])
    shadows = np.concatenate([perm_tf[8:10], perm_rbp[8:10]])
    shadow_of = np.concatenate([perm_tf[:2], perm_rbp[:2]])
    module_regs = np.stack([perm_tf[10:10 + n_modules], perm_rbp[10:10 + n_modules]], axis=1)
    r1, r2, r3 = perm_tf[0], perm_rbp[0], perm_rbp[1]

    pi = rng.uniform(0.05, 0.3, size=R)
    pi[module_regs.ravel()] = rng.uniform(0.15, 0.3, size=module_regs.size)  # learnable modules
    bound = rng.random((R, G)) < pi[:, None]
    for s, d in zip(shadows, shadow_of):  # copy the driver's binding for about half the genes
        copy = rng.random(G) < 0.5
        bound[s] = np.where(copy, bound[d], bound[s])
    test_genes = np.flatnonzero(chrom == 1)
    pair = rng.choice(test_genes, size=2, replace=False)
    for r in drivers:
        bound[r, pair] = r in (r1, r3)

    rna_width = lambda g, b: np.minimum(100, W[g] - 100 * b)
    prom_width = lambda g, b: np.full(len(g), 100)
    load = np.zeros((R, G))
    rna_rows, prom_rows = [], []
    for r in range(R):
        is_tf = types[r] == "TF"
        lengths = np.full(G, PROMOTER_BINS) if is_tf else L
        g, b, v = _sites(rng, bound[r], lengths, mirna=types[r] == "miRNA",
                         width_of=prom_width if is_tf else rna_width)
        if r in (r1, r3):  # the pair: heavy binding of its two drivers
            for gp in pair:
                keep = g != gp
                g, b, v = g[keep], b[keep], v[keep]
                bb = rng.choice(lengths[gp], size=min(4, lengths[gp]), replace=False)
                g = np.concatenate([g, np.full(len(bb), gp)])
                b = np.concatenate([b, bb])
                v = np.concatenate([v, (prom_width if is_tf else rna_width)(
                    np.full(len(bb), gp), bb)])
        np.add.at(load[r], g, v / 100.0)
        rows = pd.DataFrame({"gene": genes[g], "feature": names[r], "bin": b, "value": v})
        (prom_rows if is_tf else rna_rows).append(rows)
    phi = 1.0 - np.exp(-load)  # (R, G)

    # activities: ±1.5 on one or two groups
    activity = np.zeros((R, T))
    for r in np.concatenate([drivers, decoys]):
        gsel = rng.choice(n_groups, size=rng.integers(1, 3), replace=False)
        for k in gsel:
            activity[r, group == k] = rng.choice([-1.5, 1.5])
        activity[r] += rng.normal(0, 0.2, size=T)
    sign = np.zeros(R)
    sign[np.concatenate([drivers, decoys])] = rng.choice([-1.0, 1.0], size=16)
    b_eff = sign * rng.uniform(0.5, 1.5, size=R)

    contrib = activity[drivers].T[None, :, :] * phi[drivers].T[:, None, :]  # (G, T, 8)
    planted = contrib.sum(-1) + kappa * activity[r1][None, :] * (phi[r1] * phi[r2])[:, None]
    c = rng.normal(0, 0.1, size=T)
    planted = planted + 0.3 * np.log(L)[:, None] * c[None, :]
    centred = planted - planted.mean(axis=1, keepdims=True)
    sigma = float(np.sqrt(centred.var() * (1 - planted_fraction) / planted_fraction))
    mu = 5 + (b_eff[drivers, None] * phi[drivers]).sum(0) + rng.normal(0, baseline_sd, size=G)
    E = mu[:, None] + planted + rng.normal(0, sigma, size=(G, T))

    reg_expr = rng.normal(0, 1, size=(R, T))
    dd = np.concatenate([drivers, decoys])
    reg_expr[dd] = sign[dd, None] * activity[dd] + rng.normal(0, 0.3, size=(len(dd), T))

    Z = np.zeros((G, n_modules))
    for k in range(n_modules):
        m1, m2 = module_regs[k]
        Z[:, k] = np.maximum(0, phi[m1] + phi[m2] - 0.4 + rng.normal(0, 0.15, size=G))

    # ---- write
    (out / "truth").mkdir(parents=True, exist_ok=True)
    (out / "modules").mkdir(exist_ok=True)
    n_bins = L
    ch0_rna = pd.DataFrame({"gene": np.repeat(genes, n_bins), "feature": MASKS["rna"],
                            "bin": np.concatenate([np.arange(n) for n in n_bins]),
                            "value": 0})
    ch0_rna["value"] = np.minimum(100, np.repeat(W, n_bins) - 100 * ch0_rna["bin"].to_numpy())
    ch0_prom = pd.DataFrame({"gene": np.repeat(genes, PROMOTER_BINS),
                             "feature": MASKS["promoter"],
                             "bin": np.tile(np.arange(PROMOTER_BINS), G), "value": 100})

    def long(parts):
        f = pd.concat(parts, ignore_index=True)
        return pd.DataFrame({"gene": f["gene"].astype(str), "feature": f["feature"].astype(str),
                             "bin": f["bin"].to_numpy(np.int32),
                             "value": f["value"].to_numpy(np.float32)})

    features = pd.DataFrame(
        [(MASKS["rna"], "mask", "rna")]
        + [(n, t, "rna") for n, t in zip(names, types) if t != "TF"]
        + [(MASKS["promoter"], "mask", "promoter")]
        + [(n, t, "promoter") for n, t in zip(names, types) if t == "TF"],
        columns=["name", "type", "region"])
    maps = BindingMaps(rna=long([ch0_rna] + rna_rows), promoter=long([ch0_prom] + prom_rows),
                       features=features,
                       genes=pd.DataFrame({"gene": genes, "n_bins": L.astype(np.int32),
                                           "chromosome": chrom.astype(str), "strand": "+",
                                           "transcript": genes}))
    maps.save(out / "binding", overwrite=True, plots=False)
    pd.DataFrame(E, columns=tissues).assign(gene=genes)[["gene"] + tissues].to_parquet(
        out / "expression.parquet", index=False)
    split = chromosome_split(maps.genes, seed=seed)
    pd.DataFrame({"gene": split.index, "set": split.to_numpy()}).to_parquet(
        out / "splits.parquet", index=False)
    pd.DataFrame(reg_expr, columns=tissues).assign(regulator=names)[
        ["regulator"] + tissues].to_parquet(out / "regulator_expression.parquet", index=False)
    lvs = [f"LV{k + 1}" for k in range(n_modules)]
    pd.DataFrame(Z, columns=lvs).assign(gene=genes)[["gene"] + lvs].to_parquet(
        out / "modules" / "Z.parquet", index=False)

    role = np.full(R, "none", dtype=object)
    role[drivers], role[decoys], role[shadows] = "driver", "decoy", "shadow"
    module = np.full(R, "", dtype=object)
    for k in range(n_modules):
        role[module_regs[k]] = "module"
        module[module_regs[k]] = lvs[k]
    sh = np.full(R, "", dtype=object)
    sh[shadows] = np.array(names)[shadow_of]
    regs = pd.DataFrame({"name": names, "type": types, "role": role, "sign": sign,
                         "shadow_of": sh, "module": module, "pi": pi,
                         "n_bound": bound.sum(1)})
    regs = pd.concat([regs, pd.DataFrame(activity, columns=tissues)], axis=1)
    regs.to_parquet(out / "truth" / "regulators.parquet", index=False)
    cvar = (contrib - contrib.mean(1, keepdims=True)).var(1)  # (G, 8)
    pd.DataFrame(cvar, columns=[names[d] for d in drivers]).assign(gene=genes).to_parquet(
        out / "truth" / "contributions.parquet", index=False)
    info = {"seed": seed, "n_genes": G, "n_tissues": T, "group_size": group_size,
            "drivers": [names[d] for d in drivers], "decoys": [names[d] for d in decoys],
            "shadows": {names[s]: names[d] for s, d in zip(shadows, shadow_of)},
            "interaction": [names[r1], names[r2]], "kappa": kappa,
            "pair": {"genes": [str(genes[p]) for p in pair], "drivers": [names[r1], names[r3]]},
            "modules": {lvs[k]: [names[m] for m in module_regs[k]] for k in range(n_modules)},
            "sigma": sigma, "baseline_sd": baseline_sd, "planted_fraction": planted_fraction}
    if n_individuals > 0:
        info["persons"] = _persons(out, int(n_individuals), seed, mu, phi, drivers, names,
                                   genes, planted_fraction)
    (out / "truth" / "world.json").write_text(json.dumps(info, indent=1))
    return out


def _persons(out: Path, N: int, seed: int, mu, phi, drivers, names, genes,
             planted_fraction: float) -> dict:
    rng = np.random.default_rng([seed, 1])
    G, R = phi.shape[1], phi.shape[0]
    q = rng.normal(0, 1, size=(len(drivers), N))
    p_sign = rng.choice([-1.0, 1.0], size=len(drivers))
    planted = (p_sign[:, None, None] * q[:, None, :] * phi[drivers][:, :, None]).sum(0)
    centred = planted - planted.mean(1, keepdims=True)
    sigma = float(np.sqrt(centred.var() * (1 - planted_fraction) / planted_fraction))
    C = rng.normal(0, 1, size=(N, 3))
    lam = rng.normal(0, 0.5, size=(G, 3))
    E = mu[:, None] + planted + lam @ C.T + rng.normal(0, sigma, size=(G, N))
    people = [f"person{n + 1:03d}" for n in range(N)]
    (out / "persons").mkdir(exist_ok=True)
    tpm = np.maximum(0.0, 2.0 ** E - 0.25)
    pd.DataFrame(tpm, columns=people).assign(gene=genes)[["gene"] + people].to_parquet(
        out / "persons" / "tpm.parquet", index=False)
    pd.DataFrame(C, columns=["RIN", "rRNA_rate", "intronic_rate"]).assign(sample=people)[
        ["sample", "RIN", "rRNA_rate", "intronic_rate"]].to_parquet(
        out / "persons" / "covariates.parquet", index=False)
    rx = rng.normal(0, 1, size=(R, N))
    rx[drivers] = q + rng.normal(0, 0.3, size=q.shape)
    pd.DataFrame(rx, columns=people).assign(regulator=names)[["regulator"] + people
                                                            ].to_parquet(
        out / "persons" / "regulator_expression.parquet", index=False)
    return {"tissue": "tissue01", "n": N, "sigma": sigma,
            "signs": {names[d]: float(s) for d, s in zip(drivers, p_sign)}}
