"""Progress bars for long work (rich), silent unless asked for.

The Python API passes ``progress=False`` by default. The CLI passes ``True`` (a bar) when
standard error is a terminal, and ``"log"`` otherwise: in a batch log, plain lines
(``description: 12/40 (30 %), 24 s elapsed, ~56 s left``) every :data:`LOG_EVERY_S`
seconds once the work has run that long — short work prints nothing. One helper,
:func:`track`, wraps an iterable::

    for block in track(blocks, "expression", total=n, enabled=progress):
        ...
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
LOG_EVERY_S = 10.0


def _log_lines(iterable: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    t0 = last = time.monotonic()
    done = 0
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= LOG_EVERY_S:
            last = now
            el = now - t0
            if total:
                left = el / done * (total - done)
                msg = (f"{description}: {done:,}/{total:,} ({100 * done / total:.0f} %), "
                       f"{el:.0f} s elapsed, ~{left:.0f} s left")
            else:
                msg = f"{description}: {done:,} done, {el:.0f} s elapsed"
            print(msg, file=sys.stderr, flush=True)
    if time.monotonic() - t0 >= LOG_EVERY_S:
        print(f"{description}: {done:,} done in {time.monotonic() - t0:.0f} s", file=sys.stderr,
              flush=True)


def track(iterable: Iterable[T], description: str, *, total: int | None = None,
          enabled: bool | str = False) -> Iterator[T]:
    """Iterate ``iterable``, showing a bar (to stderr) when ``enabled`` is true, or plain
    periodic lines when it is ``"log"``."""
    if not enabled:
        yield from iterable
        return
    if enabled == "log":
        yield from _log_lines(iterable, description, total)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)


@contextlib.contextmanager
def status(message: str, *, enabled: bool | str = False):
    """A spinner with ``message`` around a step of unknown length (in ``"log"`` mode: the
    message once, and the time taken when it was long)."""
    if not enabled:
        yield
        return
    if enabled == "log":
        t0 = time.monotonic()
        print(f"{message} …", file=sys.stderr, flush=True)
        yield
        if time.monotonic() - t0 >= LOG_EVERY_S:
            print(f"{message}: done in {time.monotonic() - t0:.0f} s", file=sys.stderr,
                  flush=True)
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
