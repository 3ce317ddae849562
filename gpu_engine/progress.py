"""Progress bars for long work (rich), silent unless asked for.

The Python API passes ``progress=False`` by default; the CLI turns bars on when it writes to
a terminal. One helper, :func:`track`, wraps an iterable::

    for block in track(blocks, "expression", total=n, enabled=progress):
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def track(iterable: Iterable[T], description: str, *, total: int | None = None,
          enabled: bool = False) -> Iterator[T]:
    """Iterate ``iterable``, showing a bar (to stderr) when ``enabled``."""
    if not enabled:
        yield from iterable
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
def status(message: str, *, enabled: bool = False):
    """A spinner with ``message`` around a step of unknown length."""
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
