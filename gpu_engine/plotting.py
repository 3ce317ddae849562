"""What every plot of the engine shares: matplotlib's file-only backend and label shortening.

Plots are PNG files written with the Agg backend (no display needed, safe in batch jobs);
matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def shorten(text, n: int = 28) -> str:
    """``text`` cut to ``n`` characters with an ellipsis in the middle, keeping its start and
    its end (long pathway names often differ only at the end:
    ``REACTOME_SIGNALING_B…RECEPTOR_TYROSINE_KINASES``)."""
    text = str(text)
    if len(text) <= n:
        return text
    head = (n - 1) // 2
    return text[:head] + "…" + text[len(text) - (n - 1 - head):]
