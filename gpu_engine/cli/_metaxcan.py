"""MetaXcan command-line compatibility: what makes ``SPrediXcan.py`` / ``SMulTiXcan.py``
command lines run unchanged under ``gpu-engine twas``.

- Flags taking several values (argparse ``nargs="+"``: ``--metaxcan_filter a b``) are
  rewritten to click's repeated form before parsing (:class:`MetaXcanCommand`).
- ``--input_gwas_format_json``: the reference's JSON of column names (``column_snp``,
  ``column_pvalue``…); a column flag given on the command line overrides it.
- Flags that have no effect here are accepted, say so in ``--help`` and are logged as a
  warning when used (:func:`note_no_effect`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

# the reference's multi-value flags (both spellings)
NARGS_PLUS = ("metaxcan_filter", "models_name_filter", "split_column")

# --input_gwas_format_json keys → the engine's column flags
FORMAT_JSON_KEYS = {
    "column_snp": "snp_column", "column_effect_allele": "effect_allele_column",
    "column_non_effect_allele": "non_effect_allele_column",
    "column_chromosome": "chromosome_column", "column_position": "position_column",
    "column_freq": "freq_column", "column_beta": "beta_column",
    "column_beta_sign": "beta_sign_column", "column_or": "or_column", "column_se": "se_column",
    "column_zscore": "zscore_column", "column_pvalue": "pvalue_column",
}

log = logging.getLogger("gpu_engine.cli")


def _spellings(name: str) -> set[str]:
    return {f"--{name}", "--" + name.replace("_", "-")}


class MetaXcanCommand(click.Command):
    """A click command that also parses argparse's ``--flag v1 v2 …`` for the flags of
    ``NARGS_PLUS``: the values up to the next option become ``--flag v1 --flag v2``."""

    def parse_args(self, ctx, args):
        multi = set().union(*(_spellings(n) for n in NARGS_PLUS))
        out, i = [], 0
        while i < len(args):
            a = args[i]
            out.append(a)
            i += 1
            if a in multi:
                first = True
                while i < len(args) and not args[i].startswith("--"):
                    if not first:
                        out.append(a)
                    out.append(args[i])
                    first = False
                    i += 1
        return super().parse_args(ctx, out)


def apply_format_json(kw: dict, ctx: click.Context) -> None:
    """Fill the column options from ``--input_gwas_format_json`` where the command line did not
    set them."""
    path = kw.get("input_gwas_format_json")
    if not path:
        return
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: not a readable JSON file ({exc})",
                                 param_hint="--input_gwas_format_json") from None
    if not isinstance(spec, dict):
        raise click.BadParameter(f"{path}: expected a JSON object of column names",
                                 param_hint="--input_gwas_format_json")
    unknown = sorted(set(spec) - set(FORMAT_JSON_KEYS))
    if unknown:
        raise click.BadParameter(f"{path}: unknown key(s) {unknown}; the keys are "
                                 f"{sorted(FORMAT_JSON_KEYS)}",
                                 param_hint="--input_gwas_format_json")
    for key, opt in FORMAT_JSON_KEYS.items():
        if key in spec and ctx.get_parameter_source(opt) is not \
                click.core.ParameterSource.COMMANDLINE:
            kw[opt] = spec[key]


def note_no_effect(kw: dict, flags: dict[str, str]) -> None:
    """Say on standard error (and in the log) each given flag of ``flags`` (name → why it has
    no effect here)."""
    from ._common import console

    for name, why in flags.items():
        v = kw.get(name)
        if v not in (None, False, (), []):
            msg = (f"--{name} accepted for compatibility with MetaXcan; it has no effect here: "
                   f"{why}")
            log.info(msg)
            console(stderr=True).print(f"[yellow]warning[/yellow]: {msg}")
