"""What every ``gpu-engine`` command shares: the context settings, the console, the
backend, the output checks made before any work, the LV-model and scheduler options, and the
one mapping of the engine's errors to a clean message and exit status.

An interrupt (Ctrl-C) exits with status 130 and one line saying what was kept.

Commands raise the engine's own exceptions (:mod:`gpu_engine.errors`, ``FileNotFoundError``,
``FileExistsError``, ``PermissionError``…); :class:`EngineGroup` turns them into one line on
standard error and exit status 1 — never a traceback — so no command carries a copy of that
``try``/``except``. Usage errors (a bad combination of options) exit with status 2, as
click's own do.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
from pathlib import Path

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

SCHEDULER_HELP = ("Run {what} on a Dask cluster: 'local' (one process per core), "
                  "'local-cuda' (one worker per GPU, dask-cuda) or a scheduler address "
                  "(tcp://host:8786). Results are identical to a single-process run.")
LV_MODEL_HELP = ("The gene-module model: a PLIER model folder (`gpu-engine plier fit`), an LV "
                 "model folder, or a genes × LVs loadings matrix Z (Parquet/TSV; first column "
                 "the genes, e.g. MultiPLIER's 6,750 × 987), which needs --lv-l2 wherever data "
                 "are projected.")
LV_L2_HELP = ("The ridge L2 of a bare Z matrix given to --lv-model (MultiPLIER recount2: "
              "241.13217); a model folder records its own.")


class Obj:
    """The root group's options, handed to every command (``@click.pass_obj``)."""

    def __init__(self, backend: str | None, verbose: int):
        self.backend = backend
        self.verbose = verbose


def console(stderr: bool = False):
    """A rich console; when the stream is not a terminal (a log, a pipe) tables are not cut
    to 80 columns but laid out 160 wide."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def split_list(value: str | None) -> list[str]:
    """A comma-separated option value as a list of stripped, non-empty names."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def progress_enabled() -> bool | str:
    """A progress bar on an interactive terminal; elsewhere ``"log"``: plain periodic lines
    on standard error once the work has run 10 s (see :mod:`gpu_engine.progress`)."""
    return True if sys.stderr.isatty() else "log"


def backend(obj: Obj):
    """The :class:`~gpu_engine.backend.Backend` the user asked for (``--backend``, else
    ``$GPU_ENGINE_BACKEND``, else auto)."""
    from ..backend import get_backend

    return get_backend(obj.backend if obj is not None else None)


# ----------------------------------------------------------------------------- errors
def _engine_errors() -> tuple[type[BaseException], ...]:
    from ..errors import GpuEngineError

    # EOFError: a truncated compressed input that a reader did not name (click would print a
    # bare "Aborted!" for it)
    return (GpuEngineError, FileNotFoundError, FileExistsError, PermissionError,
            IsADirectoryError, NotADirectoryError, EOFError)


def _message(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, EOFError):
        return f"an input file ended early ({text}); it is truncated: write or download it again"
    if isinstance(exc, OSError) and text.startswith("[Errno") and exc.strerror:
        # the standard library's "[Errno 13] Permission denied: 'x'": name the path first
        name = str(exc.filename or "")
        return exc.strerror if not name or name in exc.strerror else f"{name}: {exc.strerror}"
    return text


class EngineGroup(click.Group):
    """A click group whose commands are imported on first use (``commands`` maps a name to
    ``"module:attribute"`` under :mod:`gpu_engine.cli`), and which maps the engine's errors
    to a clean message (see the module docstring)."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            module, attr = self.lazy[name].split(":")
            cmd = getattr(importlib.import_module(f"gpu_engine.cli.{module}"), attr)
            self.add_command(cmd, name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except KeyboardInterrupt:
            # outputs are written under a temporary name and renamed when complete: an
            # interrupted run leaves the earlier outputs as they were and no partial file
            click.echo("interrupted: outputs finished before the interrupt are kept; the one "
                       "being written was not (it appears only when complete)", err=True)
            raise click.exceptions.Exit(130) from None
        except _engine_errors() as exc:
            raise click.ClickException(_message(exc)) from None


# ----------------------------------------------------------------------------- outputs
def check_output(path: Path | None, *, folder: bool | None = False, overwrite: bool = True,
                 what: str = "output", table: bool = False) -> None:
    """Check before any work that ``path`` can be written: its parent is (or can be made) a
    folder we may write in, it is not a folder where a file is wanted (or the reverse;
    ``folder=None``: either), it does not exist unless ``overwrite``, and (``table``) its
    name says a table format the writer knows. Raises errors that name the path and say
    what to do."""
    if path is None:
        return
    path = Path(path)
    if table and folder is False:
        from ..io.tables import table_format

        table_format(path)
    if path.exists():
        if folder is True and not path.is_dir():
            raise click.BadParameter(f"{path} is a file; {what} must be a folder", param_hint=what)
        if folder is False and path.is_dir():
            raise click.BadParameter(f"{path} is a folder; {what} must be a file", param_hint=what)
        if not overwrite:
            raise FileExistsError(f"{path} already exists; choose another {what} or pass "
                                  "--overwrite to replace it")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, so {path} cannot be "
                                 "created; choose another path", str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write in {parent} (permission denied); "
                              f"choose another {what}", str(path))


# ----------------------------------------------------------------------------- LV models
def lv_model_options(required: bool = True, help: str = LV_MODEL_HELP):
    """``--lv-model`` and ``--lv-l2``: the same meaning in every command that takes a model."""
    def decorate(f):
        f = click.option("--lv-l2", "lv_l2", type=click.FloatRange(min=0), default=None, help=LV_L2_HELP)(f)
        return click.option("--lv-model", "lv_model", required=required,
                            type=click.Path(exists=True, path_type=Path), default=None,
                            help=help)(f)
    return decorate


def load_lv_model(path: Path, l2: float | None, obj: Obj | None = None):
    """The :class:`~gpu_engine.lvmodel.LVModel` of ``--lv-model``/``--lv-l2``."""
    from ..lvmodel import load_lv_model as load

    return load(path, l2=l2, backend=obj.backend if obj is not None else None)


# ----------------------------------------------------------------------------- Dask
def scheduler_option(what: str):
    """``--scheduler``: the same choices in every command that partitions its work."""
    return click.option("--scheduler", default=None, help=SCHEDULER_HELP.format(what=what))


@contextlib.contextmanager
def dask_client(scheduler: str | None):
    """A Dask client for ``--scheduler`` (None without one), closed on the way out."""
    from ..distributed import get_client

    client = get_client(scheduler)
    try:
        yield client
    finally:
        if client is not None:
            client.close()
