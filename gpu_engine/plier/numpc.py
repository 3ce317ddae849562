"""The number of "significant" principal components: PLIER's ``num.pc`` elbow rule.

``x`` = Tukey's running-median smoother "3RS3R" (R's ``stats::smooth`` with its defaults:
Tukey end rule, no splitting at the ends) of |diff(diff(d))| for the singular values ``d``.

- current mode (PLIER fe4e9b2): ``twiceit=TRUE``; num_pc = (first 1-based index with
  x ≤ median(x)) + 1;
- multiplier mode (PLIER a2d4a2a): ``twiceit=FALSE``; num_pc = first 1-based index with
  x < median(x).

The smoother below follows R's definition step by step (running median of 3 repeated until
nothing changes, Tukey's end rule, splitting of 2-flats, running medians again).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _med3(u, v, w):
    if (u <= v <= w) or (u >= v >= w):
        return v
    if (v <= u <= w) or (v >= u >= w):
        return u
    return w


def _imed3(u, v, w):
    """Which of (u, v, w) is the median: -1, 0 or 1."""
    if (u <= v <= w) or (u >= v >= w):
        return 0
    if (u <= w <= v) or (u >= w >= v):
        return 1
    return -1


def _tukey_ends(x, y):
    n = len(y)
    y[0] = _med3(3 * y[1] - 2 * y[2], x[0], y[1])
    y[n - 1] = _med3(y[n - 2], x[n - 1], 3 * y[n - 2] - 2 * y[n - 3])
    return y[0] != x[0] or y[n - 1] != x[n - 1]


def _sm3(x, y, ends: str) -> bool:
    """y := running median of 3 of x; returns whether anything changed."""
    n = len(x)
    if n <= 2:
        y[:] = x
        return False
    chg = False
    for i in range(1, n - 1):
        j = _imed3(x[i - 1], x[i], x[i + 1])
        y[i] = x[i + j]
        chg = chg or j != 0
    if ends == "copy":
        y[0], y[n - 1] = x[0], x[n - 1]
    elif ends == "tukey":
        chg = _tukey_ends(x, y) or chg
    return chg


def _sm3r(x, y) -> int:
    """y := "3R"(x): running medians of 3 until no change, then Tukey's end rule."""
    n = len(x)
    z = np.empty(n)
    it = chg = _sm3(x, y, "copy")
    while chg:
        chg = _sm3(y, z, "none")
        if chg:
            it += 1
            y[1:n - 1] = z[1:n - 1]
    if n > 2:
        chg = _tukey_ends(x, y)
    return it if it else int(chg)


def _sptest(x, i) -> bool:
    """Is there a 2-flat at x[i] == x[i+1] with neighbours on opposite sides?"""
    if x[i] != x[i + 1]:
        return False
    if (x[i - 1] <= x[i] and x[i + 1] <= x[i + 2]) or (x[i - 1] >= x[i] and x[i + 1] >= x[i + 2]):
        return False
    return True


def _split3(x, y, split_ends: bool) -> bool:
    n = len(x)
    y[:] = x
    if n <= 4:
        return False
    chg = False
    if split_ends and _sptest(x, 1):
        chg = True
        y[1] = x[0]
        y[2] = _med3(x[2], x[3], 3 * x[3] - 2 * x[4])
    for i in range(2, n - 3):
        if _sptest(x, i):
            j = _imed3(x[i], x[i - 1], 3 * x[i - 1] - 2 * x[i - 2])
            if j > -1:
                y[i] = x[i - 1] if j == 0 else 3 * x[i - 1] - 2 * x[i - 2]
                chg = y[i] != x[i]
            j = _imed3(x[i + 1], x[i + 2], 3 * x[i + 2] - 2 * x[i + 3])
            if j > -1:
                y[i + 1] = x[i + 2] if j == 0 else 3 * x[i + 2] - 2 * x[i + 3]
                chg = y[i + 1] != x[i + 1]
    if split_ends and _sptest(x, n - 3):
        chg = True
        y[n - 2] = x[n - 1]
        y[n - 3] = _med3(x[n - 3], x[n - 4], 3 * x[n - 4] - 2 * x[n - 5])
    return chg


def smooth_3rs3r(x, twiceit: bool = False, split_ends: bool = True) -> np.ndarray:
    """R's ``smooth(x, kind="3RS3R", twiceit=twiceit)`` with the Tukey end rule."""
    x = np.asarray(x, np.float64)
    n = len(x)
    y = np.empty(n)
    _sm3r(x, y)
    z = np.empty(n)
    if _split3(y, z, split_ends):
        _sm3r(z, y)
    if twiceit:
        y = y + smooth_3rs3r(x - y, twiceit=False, split_ends=split_ends)
    return y


def num_pc(d, mode: str = "current") -> int:
    """PLIER's elbow estimate of the number of components from singular values ``d``
    (descending; at least 4 values). See the module docstring for the two modes."""
    d = np.asarray(d, np.float64)
    if d.ndim != 1 or d.size < 4:
        raise InputError(f"num_pc needs at least 4 singular values, got {d.size}; the data "
                         "has too few samples for the elbow rule, give k explicitly")
    if mode not in ("current", "multiplier"):
        raise InputError(f"num_pc: mode must be 'current' or 'multiplier', got {mode!r}")
    raw = np.abs(np.diff(d, n=2))
    x = smooth_3rs3r(raw, twiceit=(mode == "current"))
    med = np.median(x)
    if mode == "current":
        return int(np.flatnonzero(x <= med)[0]) + 2
    return int(np.flatnonzero(x < med)[0]) + 1
