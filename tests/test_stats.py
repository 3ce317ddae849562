"""standardize (ddof 1 as R/pandas) and Benjamini–Hochberg FDR against scipy/statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control
from statsmodels.stats.multitest import multipletests

from gpu_engine.errors import InputError
from gpu_engine.stats import fdr_bh, standardize


def test_standardize_rows_and_columns_match_pandas():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(3, 2, (6, 40)), index=[f"G{i}" for i in range(6)])
    rows = standardize(df, axis=1)
    expected = df.sub(df.mean(axis=1), axis=0).div(df.std(axis=1), axis=0)  # pandas: ddof=1
    pd.testing.assert_frame_equal(rows, expected, rtol=1e-12)
    cols = standardize(df.to_numpy(), axis=0)
    np.testing.assert_allclose(cols, ((df - df.mean()) / df.std()).to_numpy(), rtol=1e-12)
    Z, mean, sd = standardize(df.to_numpy(), return_moments=True)
    np.testing.assert_allclose(sd, df.std(axis=1).to_numpy(), rtol=1e-13)


def test_standardize_float32_keeps_dtype():
    X = np.random.default_rng(2).normal(size=(3, 50)).astype(np.float32)
    Z = standardize(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z.std(axis=1, ddof=1), 1, rtol=1e-5)


def test_standardize_names_constant_and_nan_rows():
    df = pd.DataFrame([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [1.0, np.nan, 2.0]],
                      index=["GOOD", "FLAT", "HOLE"])
    with pytest.raises(InputError, match=r"2 row\(s\) cannot be standardized.*'FLAT', 'HOLE'"):
        standardize(df, what="expression")
    with pytest.raises(InputError, match=r"zero variance\): 'FLAT'"):
        standardize(df.iloc[:2])
    with pytest.raises(InputError, match="2-D"):
        standardize(np.ones(3))


def test_fdr_bh_matches_scipy_and_statsmodels():
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=900), rng.uniform(0, 1e-4, 100)])
    p[::50] = p[1]  # ties
    q = fdr_bh(p)
    np.testing.assert_allclose(q, false_discovery_control(p), rtol=1e-14)
    np.testing.assert_allclose(q, multipletests(p, method="fdr_bh")[1], rtol=1e-14)
    grid = fdr_bh(p.reshape(20, 50))
    np.testing.assert_allclose(grid.ravel(), q, rtol=0)


def test_fdr_bh_nan_and_pandas():
    p = pd.Series([0.01, np.nan, 0.04, 0.03], index=list("abcd"))
    q = fdr_bh(p)
    assert isinstance(q, pd.Series) and list(q.index) == list("abcd") and np.isnan(q["b"])
    np.testing.assert_allclose(q.dropna().to_numpy(), false_discovery_control([0.01, 0.04, 0.03]))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fdr_bh(np.array([0.5, 1.5]))


def test_constant_row_with_rounding_noise_is_an_error():
    """A constant non-zero row's computed sd is rounding noise, not exactly 0."""
    import numpy as np
    import pytest

    from gpu_engine.errors import InputError
    from gpu_engine.stats import standardize

    X = np.vstack([np.full(240, 0.5228787452803376), np.arange(240.0)])
    with pytest.raises(InputError, match="1 row.*zero variance"):
        standardize(X, labels=["flat", "ramp"])
