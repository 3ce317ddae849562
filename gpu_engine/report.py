"""The run's report: one self-contained HTML file (``OUT/report.html``; plots embedded as PNG,
a few lines of inline JavaScript to sort tables, nothing fetched from the network).

Sections: the run (config, versions, backend and device, time and memory per stage, what was
reused), inputs (traits, tissues, SNP harmonization), TWAS (S-MultiXcan QQ plot, λ_GC per
trait, top genes), modules (PLIER summary, pathways per LV, the U heat map, or the given
model), association (top LV–trait pairs at FDR < 0.05, QQ plot, the null calibration when
run), clusters (the selected partition, agreement by k, co-association, driving LVs) and
drugs (ROC and PR curves per space with the permutation baseline, top predictions). Every
table names the Parquet file it comes from (a relative link). Key figures carry a
``data-check`` attribute so that tests can compare them with the stage outputs.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ._version import __version__

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #3465a4;padding-bottom:.2em;
margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left}
th{background:#eef2f8;cursor:pointer}td.num{text-align:right;font-variant-numeric:tabular-nums}
.src{font-size:.8em;color:#666}.note{color:#666;font-style:italic}
.kpi{display:inline-block;margin:.3em 1.2em .3em 0;padding:.4em .8em;background:#f4f6fa;
border-radius:6px}.kpi b{font-size:1.3em;display:block}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0;display:block}
.scroll{max-height:420px;overflow:auto;display:inline-block}
nav a{margin-right:1em}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.82em}
@media print{nav{display:none}th{cursor:default}}
"""

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){
  th.addEventListener('click',function(){
    var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
    var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
    var rows=Array.prototype.slice.call(b.rows);
    rows.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,
      c=y.cells[i].dataset.v||y.cells[i].textContent,na=parseFloat(a),nc=parseFloat(c);
      var r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);return asc?r:-r;});
    rows.forEach(function(r){b.appendChild(r);});});});
"""

SECTIONS = [("run", "The run"), ("inputs", "Inputs"),
            ("expression", "Expression models (TWAS stage 1)"), ("twas", "TWAS"),
            ("modules", "Gene modules"), ("association", "LV–trait association"),
            ("enrichment", "What the LVs are enriched for"),
            ("clusters", "Trait clusters"), ("drugs", "Drug repurposing"),
            ("decode", "Regulators (DEcode)"), ("ccc", "Co-expression (CCC)")]


# ------------------------------------------------------------------------------ helpers
def _esc(x) -> str:
    return html.escape(str(x))


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return str(v)
        return f"{v:.3g}" if (abs(v) < 1e-3 and v != 0) or abs(v) >= 1e5 else f"{v:.4g}"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return str(v)


def _table(df: pd.DataFrame, src: str | None = None, out: Path | None = None,
           max_rows: int = 30) -> str:
    rows = []
    for _, r in df.head(max_rows).iterrows():
        cells = []
        for v in r:
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            cells.append(f'<td class="num" data-v="{v}">{_esc(_fmt(v))}</td>' if num
                         else f"<td>{_esc(v)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    more = (f'<p class="note">first {max_rows} of {len(df):,} rows</p>'
            if len(df) > max_rows else "")
    link = ""
    if src is not None:
        rel = Path(src).relative_to(out) if out is not None and Path(src).is_absolute() else src
        link = f'<p class="src">from <a href="{_esc(rel)}">{_esc(rel)}</a></p>'
    tab = (f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
           f"</tbody></table>")
    if min(len(df), max_rows) > 30:
        tab = f'<div class="scroll">{tab}</div>'
    return f"{tab}{more}{link}"


def _kpi(label: str, value, key: str | None = None) -> str:
    attr = f' data-check="{_esc(key)}" data-value="{_esc(value)}"' if key else ""
    return f'<span class="kpi"{attr}><b>{_esc(_fmt(value))}</b>{_esc(label)}</span>'


def _png(fig) -> str:
    from .plotting import pyplot

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return _img_bytes(buf.getvalue())


def _img_bytes(data: bytes, alt: str = "") -> str:
    return (f'<img alt="{_esc(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode()}">')


def _img_file(path: Path, alt: str = "") -> str:
    return _img_bytes(path.read_bytes(), alt) if path.exists() else ""


def _stage(out: Path, name: str) -> dict | None:
    try:
        doc = json.loads((out / name / "stage.json").read_text())
    except (OSError, ValueError):
        return None
    return doc if doc.get("status") == "complete" else None


def lambda_gc(p: np.ndarray) -> float:
    """Genomic inflation from p-values: median χ²₁(p) / 0.4549."""
    from scipy import stats

    p = np.asarray(p, float)
    p = p[np.isfinite(p) & (p > 0) & (p <= 1)]
    if p.size == 0:
        return float("nan")
    return float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1))


def _qq(ax, p: np.ndarray, **kw):
    p = np.sort(np.asarray(p, float)[np.isfinite(p)])
    p = np.clip(p, 1e-300, 1)
    e = (np.arange(1, len(p) + 1) - 0.5) / len(p)
    ax.plot(-np.log10(e), -np.log10(p), **kw)


def _qq_png(curves, title: str, ylabel: str = "observed −log10 p") -> str:
    """A QQ plot of ``curves`` (pairs of p-values and plot keywords) against the uniform,
    with the diagonal, as an embedded PNG."""
    from .plotting import pyplot

    fig, ax = pyplot().subplots(figsize=(5, 4.5))
    for p, kw in curves:
        _qq(ax, p, **kw)
    lim = ax.get_xlim()[1]
    ax.plot([0, lim], [0, lim], "k--", lw=0.8)
    ax.set_xlabel("expected −log10 p")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return _png(fig)


# ------------------------------------------------------------------------------ sections
def _run_section(out: Path, cfg, rows: list[dict] | None) -> str:
    import yaml

    docs = {n: _stage(out, n) for n, _ in _stage_titles()}
    action = {r["stage"]: r["action"] for r in rows or []}
    tab = []
    for n, title in _stage_titles():
        d = docs[n]
        if d is None:
            reason = next((r["reason"] for r in rows or [] if r["stage"] == n), "not run")
            tab.append({"stage": n, "title": title, "this run": action.get(n, "skip"),
                        "seconds": np.nan, "peak MiB": np.nan, "backend": "",
                        "device": "", "note": reason})
            continue
        tab.append({"stage": n, "title": title, "this run": action.get(n, ""),
                    "seconds": round(d["seconds"], 2), "peak MiB": round(d["peak_rss_mib"]),
                    "backend": d.get("backend", ""), "device": d.get("device", ""),
                    "note": ", ".join(f"{k} {_fmt(v)}" for k, v in d.get("counts", {}).items())})
    t = pd.DataFrame(tab)
    done = [d for d in docs.values() if d]
    total = sum(d["seconds"] for d in done)
    cfg_text = yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False)
    return (_kpi("stages complete", len(done), "run.stages_complete")
            + _kpi("seconds of compute (all stages)", round(total, 1))
            + _kpi("engine version", __version__)
            + _table(t) + "<details><summary>The config, as validated (paths resolved)"
            "</summary><pre>" + _esc(cfg_text) + "</pre></details>")


def _stage_titles():
    from .pipeline.stages import STAGES

    return [(s.name, s.title) for s in STAGES]


def _inputs_section(out: Path) -> str:
    parts = []
    rep = sorted((out / "spredixcan").glob("*/report.tsv")) if _stage(out, "spredixcan") \
        else []
    if rep:
        r = pd.concat([pd.read_csv(p, sep="\t") for p in rep], ignore_index=True)
        cols = [c for c in ("trait", "tissue", "genes_in_model", "model_snps", "kept",
                            "flipped", "allele_mismatch", "missing_from_gwas",
                            "genes_tested") if c in r.columns]
        parts.append(_kpi("traits with GWAS", r["trait"].nunique(), "inputs.gwas_traits")
                     + _kpi("tissues", r["tissue"].nunique(), "inputs.tissues"))
        parts.append("<h3>SNP harmonization (per trait × tissue)</h3>"
                     + _table(r[cols], "spredixcan/<trait>/report.tsv"))
    gls = out / "gls" / "gls.parquet"
    if gls.exists():
        g = pd.read_parquet(gls, columns=["lv", "trait", "n"])
        parts.append(_kpi("traits tested against the modules", g["trait"].nunique(),
                          "inputs.gls_traits")
                     + _kpi("genes in the GLS (median over pairs)", int(g["n"].median())))
    return "".join(parts) or '<p class="note">no input summary: the stages did not run</p>'


def _expression_section(out: Path) -> str:
    d = _stage(out, "expression_models")
    if d is None:
        return '<p class="note">no expression models were trained in this run</p>'
    c = d.get("counts", {})
    s = pd.read_parquet(out / "expression_models" / "en" / "summary.parquet")
    cols = [x for x in ("gene", "genename", "n_snps_in_window", "n_snps_in_model", "rho_avg",
                        "zscore_pval", "significant") if x in s.columns]
    html_ = (_kpi("samples", c.get("samples", 0))
             + _kpi("genes trained", c.get("genes_trained", 0))
             + _kpi("genes written (pass the filter)", c.get("genes_written", 0),
                    "expression.genes_written")
             + _kpi("median nested-CV ρ", round(float(c.get("median_rho_avg", np.nan)), 4)))
    if "cnn_median_linear_r2" in c:
        html_ += _kpi("CNN: median R²_lin of the projection",
                      round(float(c["cnn_median_linear_r2"]), 4))
    return html_ + _table(s[cols].sort_values("rho_avg", ascending=False),
                          "expression_models/en/summary.parquet")


def _twas_section(out: Path, cfg) -> str:

    if cfg is None:
        return '<p class="note">no config: the S-MultiXcan files are not known</p>'
    from .pipeline.stages import smultixcan_files

    stage = out / "smultixcan" if _stage(out, "smultixcan") else None
    files = smultixcan_files(cfg, stage)
    if not files:
        return '<p class="note">no S-MultiXcan results</p>'
    computed = {p.parent.name for p in (out / "smultixcan").glob("*/*-smultixcan.txt")}
    lam, top, curves = [], [], []
    for t, p in files.items():
        r = pd.read_csv(p, sep="\t", usecols=lambda c: c in ("gene", "gene_name", "pvalue"))
        pv = r["pvalue"].to_numpy(float)
        lam.append({"trait": t, "lambda_gc": lambda_gc(pv), "genes": int(np.isfinite(pv).sum()),
                    "p < 2.5e-6": int((pv < 2.5e-6).sum()),
                    "source": "computed" if t in computed else "given"})
        curves.append((pv, {"color": "tab:red" if t in computed else "0.6",
                            "lw": 1.4 if t in computed else 0.5,
                            "alpha": 1 if t in computed else 0.5}))
        if t in computed:
            top.append(r.assign(trait=t).nsmallest(10, "pvalue"))
    qq = _qq_png(curves, f"S-MultiXcan QQ, {len(files)} traits (red: computed in this run)")
    lt = pd.DataFrame(lam).sort_values("lambda_gc", ascending=False)
    html_ = (_kpi("traits", len(files), "twas.traits")
             + _kpi("median λ_GC", float(lt["lambda_gc"].median()), "twas.median_lambda")
             + qq + "<h3>λ_GC per trait (click a header to sort)</h3>"
             + _table(lt, "smultixcan/ and inputs.smultixcan", max_rows=200))
    if top:
        html_ += ("<h3>Top genes of the computed traits</h3>"
                  + _table(pd.concat(top)[["trait", "gene", "gene_name", "pvalue"]],
                           "smultixcan/<trait>/<trait>-smultixcan.txt"))
    return html_


def _modules_section(out: Path, cfg) -> str:
    d = _stage(out, "plier")
    if d is None:
        given = cfg.inputs.lv_model if cfg is not None else None
        return (f"<p>The given model: <code>{_esc(given)}</code></p>" if given else
                '<p class="note">no module model</p>')
    m = out / "plier" / "model"
    meta = json.loads((m / "model.json").read_text())
    fitted = meta.get("fitted", {})
    summ = pd.read_parquet(m / "summary.parquet")
    sig = summ[summ["fdr"] < 0.05]
    per_lv = sig.groupby("lv")["pathway"].apply(lambda s: ", ".join(s[:4])).reset_index()
    k = int(pd.read_parquet(m / "Z.parquet").shape[1] - (1 if "gene" in
                                                          pd.read_parquet(m / "Z.parquet").columns
                                                          else 0))
    html_ = (_kpi("LVs (k)", k, "plier.k")
             + _kpi("LVs with a pathway at FDR < 0.05", int(sig["lv"].nunique()),
                    "plier.lvs_with_pathway")
             + "".join(_kpi(x, fitted[x]) for x in ("L1_", "L2_", "L3_") if x in fitted
                       and fitted[x] is not None))
    html_ += _img_file(m / "U_heatmap.png", "PLIER U heat map")
    html_ += "<h3>Pathways per LV (FDR < 0.05, up to 4 shown)</h3>" + _table(
        per_lv, "plier/model/summary.parquet", max_rows=50)
    return html_


def _association_section(out: Path) -> str:

    p = out / "gls" / "gls.parquet"
    if not p.exists():
        return '<p class="note">GLS did not run</p>'
    g = pd.read_parquet(p)
    sig = g[g["fdr"] < 0.05].sort_values("pvalue_onesided")
    html_ = (_kpi("LV–trait pairs", len(g), "gls.pairs")
             + _kpi("significant at FDR < 0.05", len(sig), "gls.significant")
             + _kpi("traits with a significant LV", sig["trait"].nunique(), "gls.traits_hit")
             + _qq_png([(g["pvalue_onesided"].to_numpy(), {"color": "tab:blue", "lw": 1.2})],
                       f"GLS, {len(g):,} LV–trait pairs", "observed −log10 p (one-sided)"))
    cols = [c for c in ("lv", "trait", "beta", "beta_se", "pvalue_onesided", "fdr", "n")
            if c in g.columns]
    sig = sig.copy()
    model = out / "plier" / "model"
    if (model / "Z.parquet").exists():  # each LV's top genes and pathways, as PhenoPLIER shows
        from .io import read_matrix

        Z = read_matrix(model / "Z.parquet", what="PLIER Z")
        top = {c: ", ".join(Z[c].nlargest(5).index) for c in Z.columns}
        summ = pd.read_parquet(model / "summary.parquet")
        summ = summ[summ["fdr"] < 0.05]
        path = summ.groupby("lv")["pathway"].apply(lambda x: ", ".join(x[:3])).to_dict()
        sig["top genes"] = sig["lv"].map(top).fillna("")
        sig["pathways (FDR < 0.05)"] = sig["lv"].map(
            lambda v: path.get(int(str(v).removeprefix("LV")), "") if str(v).removeprefix(
                "LV").isdigit() else "")
        cols += ["top genes", "pathways (FDR < 0.05)"]
    html_ += "<h3>Top LV–trait pairs (FDR < 0.05)</h3>" + _table(sig[cols], "gls/gls.parquet")
    core = out / "lv_genes" / "core_genes.parquet"
    if core.exists():
        c = pd.read_parquet(core)
        html_ += ("<h3>Core genes of the significant pairs</h3><p>Genes the module implicates "
                  "but the trait's TWAS alone misses are marked <code>module_only</code>.</p>"
                  + _kpi("genes the TWAS alone misses (module_only)",
                         int(c["module_only"].sum()), "lv_genes.module_only")
                  + _table(c, "lv_genes/core_genes.parquet", max_rows=40))
    cal_path = out / "gls" / "null" / "calibration.parquet"
    if cal_path.exists():
        cal = pd.read_parquet(cal_path)
        flagged = cal[cal["inflated"]]
        excluded = (out / "gls" / "gls_all_lvs.parquet").exists()
        n_null = int(cal["n_null"].max()) if len(cal) else 0
        what = ("They were <b>excluded</b>: the tables above (and every later stage) use the "
                "other LVs, with FDR over them; the full table is <code>gls/"
                "gls_all_lvs.parquet</code>." if excluded else
                "They were <b>not excluded</b> (<code>null_calibration.exclude_inflated: "
                "false</code>): read their associations with care." if len(flagged) else
                "No LV is flagged.")
        html_ += (f"<h3>Null calibration</h3><p>GLS on {n_null:,} null traits simulated from "
                  "the gene correlations; an LV is flagged when its type-I error exceeds the "
                  f"nominal level (one-sided binomial test, Bonferroni). {what}</p>"
                  + _kpi("LVs flagged as inflated", len(flagged), "gls.inflated")
                  + _table(cal.sort_values(["inflated", "lambda_gc"], ascending=False),
                           "gls/null/calibration.parquet"))
    return html_


def _lv_traits(out: Path) -> dict[str, str]:
    """LV → its traits at GLS FDR < 0.05 (up to 3, comma-separated)."""
    p = out / "gls" / "gls.parquet"
    if not p.exists():
        return {}
    g = pd.read_parquet(p)
    g = g[g["fdr"] < 0.05].sort_values("pvalue_onesided")
    return g.groupby(g["lv"].astype(str))["trait"].apply(
        lambda t: ", ".join(map(str, t[:3]))).to_dict()


def _enrichment_section(out: Path) -> str:
    gs, cx = out / "lv_enrich" / "gene_sets.parquet", out / "lv_enrich" / "contexts.parquet"
    if not gs.exists() and not cx.exists():
        return ('<p class="note">the lv_enrich stage did not run (it needs inputs gene_sets '
                "or sample_metadata)</p>")
    traits = _lv_traits(out)
    html_ = ""
    if gs.exists():
        t = pd.read_parquet(gs)
        best = t.sort_values("pvalue", kind="stable").groupby("gene_set", sort=False).head(1)
        n_sig = t[t["fdr"] < 0.05].groupby("gene_set")["lv"].count()
        best = best.assign(**{"LVs at FDR < 0.05": best["gene_set"].map(n_sig).fillna(0)
                              .astype(int),
                              "LV's traits (GLS FDR < 0.05)": best["lv"].astype(str).map(
                                  traits).fillna("")})
        cols = ["gene_set", "lv", "auc", "pvalue", "fdr", "LVs at FDR < 0.05", "n_in_set",
                "top_set_genes", "LV's traits (GLS FDR < 0.05)"]
        html_ += ("<h3>Gene sets</h3><p>Each set's loadings in each LV against the other "
                  "genes' (Mann–Whitney AUC, one-sided p, FDR over the LVs); the best LV per "
                  "set.</p>"
                  + _kpi("gene sets tested", t["gene_set"].nunique(), "lv_enrich.gene_sets")
                  + _kpi("set–LV pairs at FDR < 0.05", int((t["fdr"] < 0.05).sum()),
                         "lv_enrich.set_pairs")
                  + _table(best[cols], "lv_enrich/gene_sets.parquet", max_rows=50))
    if cx.exists():
        c = pd.read_parquet(cx)
        sig = c[c["fdr"] < 0.05]
        sig = sig.assign(**{"LV's traits (GLS FDR < 0.05)": sig["lv"].astype(str).map(
            traits).fillna("")})
        html_ += ("<h3>Sample contexts</h3><p>Attribute values over-represented among each "
                  "LV's top samples by B (hypergeometric, FDR over every LV × value).</p>"
                  + _kpi("LV × value tests", len(c), "lv_enrich.context_tests")
                  + _kpi("over-represented at FDR < 0.05", len(sig), "lv_enrich.contexts")
                  + _table(sig, "lv_enrich/contexts.parquet", max_rows=40))
    return html_


def _clusters_section(out: Path) -> str:
    p = out / "cluster" / "labels.parquet"
    if not p.exists():
        return '<p class="note">clustering did not run</p>'
    lab = pd.read_parquet(p)
    sizes = lab["cluster"].value_counts().rename_axis("cluster").reset_index(name="traits")
    html_ = (_kpi("traits clustered", len(lab), "cluster.traits")
             + _kpi("clusters (selected partition)", lab["cluster"].nunique(),
                    "cluster.clusters")
             + _table(sizes.sort_values("cluster"), "cluster/labels.parquet"))
    cons = out / "cluster" / "consensus"
    html_ += _img_file(cons / "agreement_by_k.png", "agreement by k")
    html_ += _img_file(cons / "coassociation.png", "co-association")
    st = out / "cluster" / "stumps.parquet"
    if st.exists():
        s = pd.read_parquet(st)
        s = s[s["kept"]] if "kept" in s.columns and s["kept"].any() else s
        html_ += "<h3>Driving LVs (decision stumps)</h3>" + _table(
            s, "cluster/stumps.parquet")
    return html_


def _drugs_section(out: Path) -> str:
    from .plotting import pyplot

    spaces = [d for d in ("gene", "module") if (out / "drugs" / d / "evaluation").exists()]
    if not spaces:
        return '<p class="note">drug repurposing did not run</p>'
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    html_, rows = "", []
    for sp in spaces:
        ev = out / "drugs" / sp / "evaluation"
        f = json.loads((ev / "result.json").read_text())["fields"]
        null_auc = pd.read_parquet(ev / "null_auc.parquet").iloc[:, 0].mean()
        null_ap = pd.read_parquet(ev / "null_ap.parquet").iloc[:, 0].mean()
        roc, pr = pd.read_parquet(ev / "roc.parquet"), pd.read_parquet(ev / "pr.parquet")
        a1.plot(roc["fpr"], roc["tpr"], label=f"{sp} (AUC {f['auc']:.2f})")
        a2.plot(pr["recall"], pr["precision"], label=f"{sp} (AP {f['ap']:.2f})")
        rows.append({"space": sp, "ROC AUC": f["auc"], "null AUC": null_auc,
                     "AUC p": f["auc_pvalue"], "AP": f["ap"], "null AP": null_ap,
                     "AP p": f["ap_pvalue"]})
        html_ += _kpi(f"{sp}-space ROC AUC", round(float(f["auc"]), 4), f"drugs.{sp}.auc")
    a1.plot([0, 1], [0, 1], "k--", lw=0.8)
    a1.set_xlabel("false-positive rate")
    a1.set_ylabel("true-positive rate")
    a1.legend(fontsize=8)
    a2.set_xlabel("recall")
    a2.set_ylabel("precision")
    a2.legend(fontsize=8)
    fig.suptitle("Drug–disease predictions against the gold standard", fontsize=10)
    html_ += _png(fig) + _table(pd.DataFrame(rows), "drugs/<space>/evaluation/result.json")
    pairs = out / "drugs" / spaces[0] / "evaluation" / "pairs.parquet"
    if pairs.exists():
        pp = pd.read_parquet(pairs)
        score = next((c for c in ("score", "value") if c in pp.columns), None)
        if score:
            pp = pp.sort_values(score, ascending=False)
        html_ += (f"<h3>Top drug–disease predictions ({spaces[0]} space)</h3>"
                  + _table(pp, f"drugs/{spaces[0]}/evaluation/pairs.parquet", max_rows=20))
    return html_


def _decode_section(out: Path) -> str:
    d = _stage(out, "decode")
    if d is None:
        return '<p class="note">DEcode did not run</p>'
    c = d.get("counts", {})
    html_ = (_kpi("genes", c.get("genes", 0)) + _kpi("regulators", c.get("regulators", 0))
             + _kpi("mean test Spearman (tissue fold changes)",
                    round(float(c.get("test_spearman", float("nan"))), 4),
                    "decode.test_spearman"))
    if "regulators_associated" in c:
        html_ += _kpi("regulators whose DeepLIFT follows their own expression (FDR < 5 %)",
                      c["regulators_associated"], "decode.associated")
    att = out / "decode" / "attribution"
    html_ += _img_file(att / "top_regulators.png", "top regulators")
    imp = att / "importance.parquet"
    if imp.exists():
        html_ += "<h3>Regulators by collective DeepLIFT importance</h3>" + _table(
            pd.read_parquet(imp), "decode/attribution/importance.parquet", max_rows=20)
    mods = out / "decode" / "modules" / "regulators.parquet"
    if mods.exists():
        r = pd.read_parquet(mods)
        top = r[r["rank"] <= 3][["column", "regulator", "rank", "score", "perm_p"]
                                + [x for x in ("binding_fdr",) if x in r.columns]]
        html_ += "<h3>Each LV's top regulators</h3>" + _table(
            top, "decode/modules/regulators.parquet", max_rows=60)
    elif "module_genes_with_maps" in c:
        html_ += (f'<p class="note">modules not explained: {c["module_genes_with_maps"]} '
                  "genes of the LV model have binding maps</p>")
    return html_


def _ccc_section(out: Path) -> str:
    from .plotting import pyplot

    p = out / "ccc" / "pairs.parquet"
    if not p.exists():
        return '<p class="note">CCC did not run (stages.ccc.enabled: false)</p>'
    t = pd.read_parquet(p)
    same = t["shared_lvs"] > 0
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, max(float(t["ccc"].max()), 1e-6), 40)
    ax.hist(t.loc[~same, "ccc"], bins=bins, density=True, alpha=0.6, label="no shared LV")
    ax.hist(t.loc[same, "ccc"], bins=bins, density=True, alpha=0.6,
            label="among one LV's top genes")
    ax.set_xlabel("CCC")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("CCC of gene pairs among the LVs' top genes", fontsize=9)
    return (_kpi("genes", t["gene_a"].nunique() + 1, None)
            + _kpi("pairs", len(t), "ccc.pairs")
            + _kpi("mean CCC, pairs sharing an LV", round(float(t.loc[same, "ccc"].mean()), 4))
            + _kpi("mean CCC, other pairs", round(float(t.loc[~same, "ccc"].mean()), 4))
            + _png(fig) + "<h3>Highest CCC pairs</h3>"
            + _table(t.nlargest(20, "ccc"), "ccc/pairs.parquet"))


def write_report(out: str | Path, cfg=None, rows: list[dict] | None = None, *,
                 title: str | None = None) -> Path:
    """Write ``out/report.html`` from the stage folders under ``out`` (atomically)."""
    from .io.atomic import atomic_path

    out = Path(out)
    title = title or (cfg.report.title if cfg is not None else "gpu_engine analysis")
    body = []
    makers = {"run": lambda: _run_section(out, cfg, rows), "inputs": lambda: _inputs_section(out),
              "expression": lambda: _expression_section(out),
              "twas": lambda: _twas_section(out, cfg), "modules": lambda: _modules_section(out,
                                                                                         cfg),
              "association": lambda: _association_section(out),
              "enrichment": lambda: _enrichment_section(out),
              "clusters": lambda: _clusters_section(out), "drugs": lambda: _drugs_section(out),
              "decode": lambda: _decode_section(out), "ccc": lambda: _ccc_section(out)}
    for key, name in SECTIONS:
        try:
            content = makers[key]()
        except Exception as exc:
            content = f'<p class="note">this section could not be drawn: {_esc(exc)}</p>'
        body.append(f'<section id="{key}"><h2>{_esc(name)}</h2>{content}</section>')
    nav = "".join(f'<a href="#{k}">{_esc(n)}</a>' for k, n in SECTIONS)
    from datetime import datetime, timezone

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}'
           f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
           f"<style>{CSS}</style></head><body><h1>{_esc(title)}</h1>"
           f'<p class="src">gpu_engine {__version__} · {when} · results in {_esc(out)}</p>'
           f"<nav>{nav}</nav>{''.join(body)}<script>{SORT_JS}</script></body></html>")
    path = out / "report.html"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(doc, encoding="utf-8")
    return path
