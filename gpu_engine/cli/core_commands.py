"""``gpu-engine info``, ``world``, ``demo`` and ``bench``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .._version import __version__
from ._common import CONTEXT, Obj, check_output
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled


# ----------------------------------------------------------------------------- info
@click.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def info(obj: Obj, as_json: bool) -> None:
    """Show versions, the backends available here (and why not), devices and memory.

    Probing the gpu backend imports cupy and initialises CUDA; nothing else does.
    """
    import json

    from rich.markup import escape
    from rich.table import Table

    from ..backend import Backend, available_backends, resolve
    from ..benchmarking import machine_info, versions

    avail = available_backends()
    try:
        chosen = resolve(obj.backend)
        error = None
    except Exception as exc:
        chosen, error = None, str(exc)
    report = {"gpu_engine": __version__, "selected_backend": chosen,
              "backends": {k: {"available": v.ok, "reason": v.reason} for k, v in avail.items()},
              "machine": machine_info(Backend("cpu")), "versions": versions(), "gpus": []}
    report["machine"].pop("versions", None)
    if avail["gpu"].ok:
        from ..backend import get_backend

        be = get_backend("gpu")
        free, total = be.memory()
        report["gpus"].append({"device": be.device(), "free_gib": round(free / 2**30, 1),
                               "total_gib": round(total / 2**30, 1)})
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    con = _console()
    con.print(f"[bold]gpu_engine {__version__}[/bold]")
    m = report["machine"]
    con.print(f"CPU: {m['cpu']} — {m['cpu_cores']} cores, {m['memory_gib']} GiB memory")
    for g in report["gpus"]:
        con.print(f"GPU: {g['device']}, {g['free_gib']} GiB free")
    t = Table(title="backends")
    t.add_column("backend")
    t.add_column("available")
    t.add_column("why not")
    for name, a in avail.items():
        t.add_row(name, "[green]yes[/green]" if a.ok else "[red]no[/red]", escape(a.reason))
    con.print(t)
    con.print(f"selected (--backend {obj.backend or 'auto'}): "
              f"{chosen if chosen else '[red]' + escape(str(error)) + '[/red]'}")
    v = Table(title="versions")
    v.add_column("package")
    v.add_column("version")
    for k, ver in report["versions"].items():
        v.add_row(k, ver)
    con.print(v)


# ----------------------------------------------------------------------------- world
@click.command(context_settings=CONTEXT)
@click.option("--scale", type=click.Choice(["small", "medium", "full"]), default="small",
              show_default=True,
              help="small: 1,000 genes (seconds); medium: 3,000 genes, 1,000 samples, 500 "
                   "traits (under a minute); full: PhenoPLIER scale — 6,750 genes, 987 modules, "
                   "37,032 samples, 4,091 traits, 49 tissues, 1,170 drugs (12 GB written in blocks, "
                   "~2 GB of memory, ~6 minutes on 2 cores).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed; the same seed gives the same world.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to create (must not exist unless --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Verify the planted structure after writing and print the checks.")
def world(scale: str, seed: int, out: Path, overwrite: bool, check: bool) -> None:
    """Generate a synthetic world with planted truth, in the real input formats.

    \b
    The folder holds: genes.parquet, gene_corr.parquet (LD-like, block-banded, positive
    definite), pathways.gmt, expression/ (genes × samples in blocks), smultixcan/ (one
    S-MultiXcan table per trait), spredixcan/<tissue>/ (signed z, genes × traits),
    drugs/ (signatures, gold standard), trait_disease.tsv, truth/ (modules ↔ pathways,
    loadings Z, scores B, trait–module effects, clusters, drug targets) and world.json.

    \b
    Example:
      gpu-engine world --scale small --seed 0 --out world_small
    """
    from ..datasets import check_world, generate_world

    check_output(out, folder=True, overwrite=overwrite, what="--out")
    con = _console()
    t0 = time.perf_counter()
    w = generate_world(out, scale=scale, seed=seed, overwrite=overwrite,
                       progress=_progress_enabled())
    elapsed = time.perf_counter() - t0
    c = w.config
    con.print(f"[bold]world[/bold] {out} (scale {scale}, seed {seed}) written in {elapsed:.1f} s: "
              f"{c.n_genes:,} genes, {c.n_pathways:,} pathways, {c.n_modules:,} modules, "
              f"{c.n_samples:,} samples, {c.n_traits:,} traits, {c.n_tissues} tissues, "
              f"{c.n_drugs:,} drugs")
    if check:
        table = check_world(w, recovery=scale != "full")
        _print_checks(con, table.rename(columns={"check": "metric"}).assign(stage="world"))
        if not table["ok"].all():
            raise click.ClickException("some planted-structure checks failed (see above)")


def _print_checks(con, table) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="summary")
    for col in ("stage", "metric", "value", "target", "ok"):
        t.add_column(col, justify="right" if col == "value" else "left")
    for r in table.itertuples():
        t.add_row(r.stage, escape(r.metric), f"{r.value:.4g}", escape(r.target),
                  "[green]yes[/green]" if r.ok else "[red]no[/red]")
    con.print(t)


# ----------------------------------------------------------------------------- demo
@click.command(context_settings=CONTEXT)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("gpu_engine_demo"), show_default=True,
              help="Folder for everything the demo writes (the world, every stage's outputs, "
                   "summary.tsv). Re-running replaces its contents.")
@click.option("--scale", type=click.Choice(["small", "medium"]), default="small",
              show_default=True, help="Size of the synthetic world.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.pass_obj
def demo(obj: Obj, out: Path, scale: str, seed: int) -> None:
    """`gpu-engine run --example` plus scoring: write a synthetic world, a planted-regulator
    world and their config into --out, run every stage (results/, with report.html), score
    each stage's outputs against the planted truth, and print a summary table.

    \b
    Scored: world (planted structure), twas (S-MultiXcan AUC for planted genes, calibration,
    gene correlations vs the pair-by-pair definition), plier (pathways and modules
    recovered), gls (power, false discoveries, null type-I error, marginal and conditional;
    prioritization), cluster (consensus vs planted trait clusters, driving LVs), drugs
    (gene- and module-space AUC / AP on the gold standard), enrich (planted gene sets and
    tissues found by the LVs' enrichment), ccc (co-expression of same-module genes, parity
    with ccc-coef), expression (elastic net and CNN; their databases → S-PrediXcan of a GWAS
    computed from the same genotypes), decode (planted regulators found by DeepLIFT and
    knock-outs, modules explained; needs torch).

    \b
    Example:
      gpu-engine demo --out gpu_engine_demo
    """
    from ..backend import get_backend
    from ..demo import run_demo

    con = _console()
    be = get_backend(obj.backend)
    con.print(f"[bold]gpu_engine demo[/bold] — scale {scale}, seed {seed}, backend {be.name} "
              f"({be.device()}), output {out}/")
    t0 = time.perf_counter()
    summary = run_demo(out, scale=scale, seed=seed, backend=be.name,
                       progress=_progress_enabled(),
                       on_start=lambda name: con.print(f"  stage {name} …"),
                       on_stage=lambda name, s: con.print(f"  stage {name}: {s:.1f} s"))
    _print_checks(con, summary)
    n_ok = int(summary["ok"].sum())
    con.print(f"{n_ok}/{len(summary)} checks passed in {time.perf_counter() - t0:.1f} s; "
              f"summary written to {out / 'summary.tsv'}")
    if n_ok < len(summary):
        sys.exit(1)


# ----------------------------------------------------------------------------- bench
@click.command(context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="List the benchmarks and exit.")
@click.option("--size", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: seconds, for a laptop; full: the sizes the issues name (PhenoPLIER "
                   "scale).")
@click.option("--repeats", type=int, default=5, show_default=True,
              help="Timed runs of each side (after one untimed warm-up); medians are reported.")
@click.option("--bench-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with bench_*.py (default: ./bench or the source checkout's).")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where JSON records are appended (default: <bench-dir>/results).")
@click.option("--ours-only", is_flag=True,
              help="Time only our side; take each case's baseline (and our cpu time) from the "
                   "newest cpu record of the same case and size under <bench-dir>/results. "
                   "For a GPU machine lent for minutes.")
@click.pass_obj
def bench(obj: Obj, names: tuple[str, ...], list_only: bool, size: str, repeats: int,
          bench_dir: Path | None, results: Path | None, ours_only: bool) -> None:
    """Run benchmarks: baseline and ours on the same data in one run, with the ratio.

    \b
    Prints name, size, baseline_s, ours_s, ratio (baseline / ours, > 1 means we are faster)
    and appends a JSON record (machine, CPU/GPU, versions, sizes, all times) per case to
    bench/results/<name>.jsonl. Timings are never asserted anywhere.
    Examples:
      gpu-engine bench --list
      gpu-engine bench standardize --size quick
      gpu-engine --backend gpu bench --size full
    """
    from rich.table import Table

    from .. import benchmarking as bm
    from ..backend import get_backend

    bdir = bm.find_bench_dir(bench_dir)
    found = bm.discover(bdir)
    con = _console()
    if list_only:
        for name, path in found.items():
            doc = (bm.load(path).__doc__ or "").strip().splitlines()
            con.print(f"[bold]{name}[/bold]: {doc[0] if doc else ''}")
        return
    unknown = [n for n in names if n not in found]
    if unknown:
        raise click.ClickException(f"unknown benchmark(s) {', '.join(unknown)}; "
                                   f"available: {', '.join(found)}")
    be = get_backend(obj.backend)
    results = results or bdir / bm.RESULTS_DIRNAME
    machine = bm.machine_info(be)
    table = Table(title=f"benchmarks ({size}, backend {be.name})")
    for col in ("name", "size", "baseline", "ours", "baseline_s", "ours_s", "ratio", "max diff"):
        table.add_column(col)
    for name in names or tuple(found):
        module = bm.load(found[name])
        for case in module.cases(size, be):
            con.print(f"running {name} / {case.name} …")
            if ours_only:
                rec = bm.run_case_ours_only(name, case, be, repeats=repeats,
                                            records=bdir / bm.RESULTS_DIRNAME)
            else:
                rec = bm.run_case(name, case, be, repeats=repeats)
            rec["machine"] = machine
            bm.append_record(results, rec)
            click.echo(f"{name}/{case.name}, {bm.format_size(case.size)}, "
                       f"{rec['baseline_s']:.4f}, {rec['ours_s']:.4f}, {rec['ratio']:.2f}")
            table.add_row(f"{name}/{case.name}", bm.format_size(case.size), case.baseline_label,
                          case.ours_label, f"{rec['baseline_s']:.4f}", f"{rec['ours_s']:.4f}",
                          f"{rec['ratio']:.2f}×", f"{rec.get('max_abs_diff', float('nan')):.2e}")
    con.print(table)
    con.print(f"records appended under {results}/")
