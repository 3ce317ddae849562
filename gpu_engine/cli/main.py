"""The ``gpu-engine`` command.

Global options (``--backend``, ``--verbose``) come before the command; every command has its
own ``--help`` with examples. Commands keep heavy imports inside their bodies so that
``gpu-engine --help`` answers at once.
"""

from __future__ import annotations

import logging

import click

from .._version import __version__
from ..backend import CHOICES
from ._common import CONTEXT, EngineGroup, Obj, console

# Every command, by name → "module:attribute" under gpu_engine.cli: the one registration point.
# A command module is imported only when its command runs (or help lists it).
COMMANDS = {
    "info": "core_commands:info",
    "world": "core_commands:world",
    "demo": "core_commands:demo",
    "bench": "core_commands:bench",
    "plier": "plier_commands:plier",
    "twas": "twas_commands:twas",
    "expression": "expression_commands:expression",
    "gls": "gls_commands:gls",
    "gls-null": "gls_commands:gls_null",
    "gls-cli": "gls_cli_command:gls_cli",
    "lv": "lv_commands:lv",
    "cluster": "cluster_commands:cluster",
    "drugs": "drugs_commands:drugs",
    "ccc": "ccc_commands:ccc_cmd",
    "decode": "decode_commands:decode",
    "run": "run_commands:run_cmd",
}


@click.group(cls=EngineGroup, lazy=COMMANDS, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="gpu-engine")
@click.option("--backend", type=click.Choice(CHOICES), default=None, show_default=False,
              help="Where to compute: cpu (numpy/numba), gpu (cupy + CUDA kernels), rapids "
                   "(gpu + cuDF/cuML) or auto (the richest available). Default: "
                   "$GPU_ENGINE_BACKEND, else auto. Asking for gpu without one is an error.")
@click.option("-v", "--verbose", count=True,
              help="More log output (-v: info, -vv: debug).")
@click.pass_context
def cli(ctx: click.Context, backend: str | None, verbose: int) -> None:
    """gpu_engine — gene-module genetics on CPU, one GPU or many.

    PLIER gene modules and the MultiPLIER projection, the TWAS layer (S-PrediXcan,
    S-MultiXcan, gene–gene correlations), PhenoPLIER's GLS module–trait association, trait
    clustering, drug repurposing and the CCC coefficient — with the reference tools'
    numbers on a laptop CPU and in minutes on a GPU.

    \b
    Start here:
      gpu-engine info                      what this machine can run
      gpu-engine demo                      a synthetic world, every stage, scored
      gpu-engine run --example small       the whole analysis from one config
      gpu-engine world --scale medium --out world/
      gpu-engine bench --list              benchmarks against CPU baselines
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    try:
        from rich.logging import RichHandler

        handler = RichHandler(console=console(stderr=True), show_path=False)
        logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    except ImportError:  # pragma: no cover
        logging.basicConfig(level=level)
    ctx.obj = Obj(backend, verbose)


def main() -> None:
    cli(prog_name="gpu-engine")


if __name__ == "__main__":  # pragma: no cover
    main()
