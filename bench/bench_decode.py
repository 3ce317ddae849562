"""DEcode at the released shapes (372 RNA and 726 promoter channels, 54 outputs; 395,014
parameters), on CPU or — with a GPU backend and CUDA — the GPU.

Cases (``quick`` / ``full``):

- ``training epoch``: one epoch of Adam (batches of 128) over G genes, the explicit
  convolutions (the reference's computation) vs the fast mode (forward and backward through
  the trunk's exact summary form, :mod:`gpu_engine.decode.training`). G = 1,280 / 2,560;
  an epoch over the issue's 22,000 genes is G × 22,000 / G of these (``notes``). Gene
  lengths as in the planted world (log-normal, median 26 bins, ≤ 260), 2 % of the regulator
  entries bound. The fast mode's one-off summaries are timed separately (``notes``).
  ``max_abs_diff``: the relative difference of the two epochs' mean training loss.
- ``deeplift``: 2,705 genes (the spec's test set) × 54 outputs, captum's ``DeepLift`` (one
  call per output) vs the batched closed form. captum is timed on a sample of genes (64 /
  256) and extrapolated (``baseline_scale``); ``max_abs_diff`` over that sample.
  ``quick``: 512 genes.
- ``knock-out``: one gene pair of a model fitted (1 epoch) on a planted world with the
  released channel counts; N random knock-outs of the regulators bound in either gene
  (N = 2,000 / 10,000), one explicit forward per draw (the reference's loop, timed on a
  fifth of the draws and extrapolated) vs all draws in one batched pass of the fast mode.
  ``max_abs_diff``: the OLS coefficients of the sampled draws, loop vs batched.
"""

from __future__ import annotations

import copy
import json
import time

import numpy as np

from gpu_engine.benchmarking import Case

F_RNA, F_PROM, N_OUT = 372, 726, 54
SIZES = {"quick": {"train_genes": 1280, "dl_genes": 512, "dl_sample": 64, "ko": 2000},
         "full": {"train_genes": 2560, "dl_genes": 2705, "dl_sample": 256, "ko": 10000}}


def _inputs(n: int, seed: int = 0):
    """Per-gene float32 arrays (F_RNA, L) and (F_PROM, 30), scaled to [0, 1] as after the
    training maxima."""
    rng = np.random.default_rng(seed)
    L = np.clip(np.round(rng.lognormal(np.log(26), 0.8, size=n)), 1, 260).astype(int)
    rna, prom = [], []
    for g in range(n):
        r = (rng.random((F_RNA, L[g])) < 0.02) * rng.random((F_RNA, L[g]))
        r[0] = 1.0
        p = (rng.random((F_PROM, 30)) < 0.02) * rng.random((F_PROM, 30))
        p[0] = 1.0
        rna.append(r.astype(np.float32))
        prom.append(p.astype(np.float32))
    return rna, prom


def _device(backend):
    import torch

    return "cuda" if backend.is_gpu and torch.cuda.is_available() else "cpu"


def cases(size: str, backend) -> list[Case]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return []
    s = SIZES[size]
    return [_training(s, backend), _deeplift(s, backend), _knockout(s, backend)]


def _training(s, backend) -> Case:
    import torch

    from gpu_engine.decode.network import build_network
    from gpu_engine.decode.training import BatchPredictor, mean_loss

    dev = _device(backend)
    G = s["train_genes"]
    rna, prom = _inputs(G)
    Y = np.random.default_rng(1).normal(size=(G, N_OUT))
    idx = np.arange(G)
    net0 = build_network(F_RNA, F_PROM, N_OUT, seed=0, device=dev)
    explicit = BatchPredictor(rna, prom, padding="fixed", mode="explicit",
                              dtype=torch.float32, device=dev)
    t0 = time.perf_counter()
    fast = BatchPredictor(rna, prom, padding="fixed", mode="fast", dtype=torch.float32,
                          device=dev)
    summaries_s = time.perf_counter() - t0

    def epoch(batches):
        net = copy.deepcopy(net0).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        loss = mean_loss(net, batches, Y, idx, batch_size=128,
                         rng=np.random.default_rng(2), train=True, opt=opt)
        if dev == "cuda":
            torch.cuda.synchronize()
        return loss

    return Case("training epoch", {"genes": G, "rna_channels": F_RNA, "promoter_channels":
                                   F_PROM, "outputs": N_OUT, "batch": 128},
                lambda: epoch(explicit), lambda: epoch(fast), "explicit convolutions",
                "fast mode (summary form)", backend.name if dev == "cuda" else "cpu",
                check=lambda a, b: abs(a - b) / abs(a), repeats=2, warmup=1,
                notes={"device": dev, "torch": torch.__version__,
                       "epoch_22k_genes_factor": 22000 / G,
                       "fast_summaries_once_s": summaries_s})


def _deeplift(s, backend) -> Case:
    import torch

    from gpu_engine.decode.deeplift import attribute as closed_form
    from gpu_engine.decode.deeplift import deeplift_captum
    from gpu_engine.decode.network import build_network, pad_batch

    dev = _device(backend)
    G, k = s["dl_genes"], s["dl_sample"]
    rna, prom = _inputs(G, seed=3)
    net = build_network(F_RNA, F_PROM, N_OUT, seed=1, device=dev)
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        r, p, _ = pad_batch(rna[:256], prom[:256], dtype=torch.float32)
        net.train()
        for _ in range(5):
            net(r.to(dev), p.to(dev))
    net.eval()
    l_ref = int(np.median([a.shape[1] for a in rna]))

    def captum_sample():
        out_r, out_p = [], []
        for a in range(0, k, 64):
            r, p, ln = pad_batch(rna[a:a + 64], prom[a:a + 64], min_length=l_ref,
                                 dtype=torch.float32)
            x, y = deeplift_captum(net, r.to(dev), p.to(dev), ln, l_rna=l_ref)
            out_r.append(x)
            out_p.append(y)
        return np.concatenate(out_r), np.concatenate(out_p)

    def ours():
        res = closed_form(net, rna, prom, l_rna=l_ref, batch_size=128)
        if dev == "cuda":
            torch.cuda.synchronize()
        return res

    def check(a, b):
        return float(max(np.abs(a[0] - b[0][:k]).max(), np.abs(a[1] - b[1][:k]).max()))

    return Case("deeplift", {"genes": G, "outputs": N_OUT, "rna_channels": F_RNA,
                             "promoter_channels": F_PROM, "captum_sample_genes": k},
                captum_sample, ours, "captum DeepLift (per output)", "closed form (batched)",
                backend.name if dev == "cuda" else "cpu", check=check,
                baseline_scale=G / k, repeats=1, warmup=0,
                notes={"device": dev, "torch": torch.__version__,
                       "dtype": "float32", "baseline": f"captum on {k} genes, × {G / k:.1f}"})


def _knockout(s, backend) -> Case:
    import tempfile
    from pathlib import Path

    import pandas as pd
    import torch

    from gpu_engine.datasets.decode_world import generate_decode_world
    from gpu_engine.decode import data as D
    from gpu_engine.decode.features import BindingMaps
    from gpu_engine.decode.model import DEcode

    dev = _device(backend)
    tmp = Path(tempfile.mkdtemp(prefix="bench_decode_"))
    out = generate_decode_world(tmp / "w", n_genes=400, n_tissues=54, group_size=6,
                                n_tf=F_PROM - 1, n_rbp=300, n_mirna=F_RNA - 301, seed=0)
    maps = BindingMaps.read(out / "binding")
    T = D.tissue_targets(pd.read_parquet(out / "expression.parquet").set_index("gene"))
    model = DEcode(restarts=1, epochs=1, min_genes=0, device=dev).fit(
        maps, T.iloc[:, :N_OUT - 1].assign(MedianExp=T["MedianExp"]),
        pd.read_parquet(out / "splits.parquet"))
    pair = json.loads((out / "truth" / "world.json").read_text())["pair"]["genes"]
    n = s["ko"]
    n_loop = n // 5

    def loop():
        return model.knockout(maps, pair, n=n_loop, method="loop").coefficients

    def batched():
        return model.knockout(maps, pair, n=n, method="batched").coefficients

    def check(a, b):
        ref = model.knockout(maps, pair, n=n_loop, method="batched").coefficients
        m = a.merge(ref, on="regulator")
        return float(np.abs(m["coef_x"] - m["coef_y"]).max())

    n_bound = len(batched())
    return Case("knock-out", {"draws": n, "bound_regulators": n_bound,
                              "regulators": model.report_["regulators_kept"]},
                loop, batched, "one explicit forward per draw", "batched fast mode",
                backend.name if dev == "cuda" else "cpu", check=check,
                baseline_scale=n / n_loop, repeats=1, warmup=1,
                notes={"device": dev, "torch": torch.__version__,
                       "baseline": f"loop over {n_loop} draws, × {n / n_loop:.0f}",
                       "channels": {"rna": int((model.maxima_["region"] == "rna").sum()),
                                    "promoter": int((model.maxima_["region"] ==
                                                     "promoter").sum())}})
