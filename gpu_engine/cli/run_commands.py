"""``gpu-engine run``: the whole analysis from one config (see ``docs/pipeline.md``)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._common import CONTEXT, Obj
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled


@click.command("run", context_settings=CONTEXT)
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--example", type=click.Choice(["small", "medium"]), default=None,
              help="Write a synthetic world and its config into --dir and run it.")
@click.option("--dir", "example_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("gpu_engine_example"), show_default=True,
              help="With --example: the folder for world/, config.yaml and results/.")
@click.option("--seed", type=int, default=0, show_default=True, help="With --example.")
@click.option("--dry-run", is_flag=True, help="Print the plan (what runs, what is reused "
              "and why) and run nothing.")
@click.option("--force", "force", multiple=True, metavar="STAGE",
              help="Re-run STAGE even if its result is reusable (repeatable).")
@click.option("--from", "from_stage", default=None, metavar="STAGE",
              help="Re-run STAGE and every stage downstream of it.")
@click.option("--until", default=None, metavar="STAGE", help="Run nothing after STAGE.")
@click.option("--quiet", is_flag=True, help="Only errors and the final summary (batch jobs).")
@click.pass_obj
def run_cmd(obj: Obj, config, example, example_dir, seed, dry_run, force, from_stage, until,
            quiet) -> None:
    """Run every stage the config's inputs allow — expression models, S-PrediXcan,
    S-MultiXcan, gene correlations, PLIER, GLS (with its null calibration), core genes, LV
    enrichment, trait clusters, drugs, DEcode, CCC — each into OUT/<stage>/ with a
    stage.json (parameters, input fingerprints, times, memory, counts) and a log in
    OUT/logs/. A stage whose parameters and inputs are unchanged is reused; a changed one
    re-runs with everything downstream; a killed run resumes where it stopped (long stages
    keep their finished chunks: traits, null batches, ensemble members, tissues). The
    config is checked before anything runs, and every mistake is reported at once.
    OUT/report.html (self-contained) summarises the run. Every config key:
    docs/pipeline.md.

    \b
      gpu-engine run --example small            a synthetic world, every stage
      gpu-engine run config.yaml --dry-run      the plan: what runs or is reused, and why
      gpu-engine run config.yaml --from gls     re-run GLS and everything that reads it
    """
    from ..pipeline import load_config, run
    from ..pipeline.runner import StageFailed

    con = _console()
    if (config is None) == (example is None):
        raise click.UsageError("give a CONFIG file or --example small|medium (not both)")
    if example is not None:
        from ..pipeline.example import write_example

        con.print(f"writing the {example} example into {example_dir}/ …")
        config = write_example(example_dir, scale=example, seed=seed,
                               backend=obj.backend or "auto" if obj else "auto")
    cfg = load_config(config)
    if obj is not None and obj.backend:
        cfg = cfg.model_copy(update={"backend": obj.backend})
    t0 = time.perf_counter()

    def event(kind, item, row):
        if quiet:
            return
        if kind == "start":
            con.print(f"[bold]{item.name}[/bold] — {item.stage.title}: {row['reason']} …")
        elif kind == "done":
            counts = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in row.get("counts", {}).items())
            con.print(f"  done in {row['seconds']:.1f} s, peak {row['peak_rss_mib']:.0f} MiB"
                      + (f" ({counts})" if counts else ""))
        elif kind == "reuse":
            con.print(f"[dim]{item.name}: reused ({row['reason']})[/dim]")

    try:
        rows = run(cfg, force=force, from_stage=from_stage, until=until, dry_run=dry_run,
                   progress=False if quiet else _progress_enabled(), on_event=event)
    except StageFailed as exc:
        raise click.ClickException(str(exc)) from None
    _summary(con, rows, dry_run, time.perf_counter() - t0, cfg.out)


def _summary(con, rows, dry_run: bool, seconds: float, out: Path) -> None:
    from rich.table import Table

    tab = Table(title="plan" if dry_run else "run summary")
    for c in ("stage", "action", "why", "seconds", "peak MiB"):
        tab.add_column(c, justify="right" if c in ("seconds", "peak MiB") else "left")
    for r in rows:
        tab.add_row(r["stage"], r["action"], r["reason"],
                    f"{r['seconds']:.1f}" if "seconds" in r else "",
                    f"{r['peak_rss_mib']:.0f}" if "peak_rss_mib" in r else "")
    con.print(tab)
    if not dry_run:
        n = sum(r["action"] == "run" for r in rows)
        con.print(f"{n} stage(s) run, {sum(r['action'] == 'reuse' for r in rows)} reused, "
                  f"{sum(r['action'] == 'skip' for r in rows)} skipped in {seconds:.1f} s; "
                  f"results in {out}/")
