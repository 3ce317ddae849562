"""S-MultiXcan inputs the way PhenoPLIER's gls_cli reads them: real TSV fixtures with
duplicated gene names and NaN p-values, the validation slices, trait names from file names."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from gpu_engine.errors import InputError
from gpu_engine.gls import read_smultixcan, trait_values
from gpu_engine.gls.inputs import smultixcan_files


@pytest.fixture(scope="module")
def gls_dir(shared):
    return shared / "phenoplier_data" / "gls"


def test_real_smultixcan_files(gls_dir):
    files = [gls_dir / f"random.pheno{i}-gtex_v8-mashr-smultixcan.txt.gz" for i in (0, 6)]
    res = read_smultixcan(files)
    assert res.traits == ["random.pheno0", "random.pheno6"]
    rep = res.report.set_index("trait")
    assert rep.loc["random.pheno0", "rows"] == 22317
    assert rep.loc["random.pheno6", "rows"] == 22318
    assert (rep["duplicated"] == 6).all() and (rep["nan_pvalue"] == 3).all()
    assert (rep["zero_pvalue"] == 0).all()
    raw = pd.read_csv(files[0], sep="\t")
    first = raw.drop_duplicates("gene_name").dropna(subset=["pvalue"]).set_index("gene_name")
    p0 = res.pvalue["random.pheno0"].dropna()
    assert p0.index.equals(first.index) or set(p0.index) == set(first.index)
    np.testing.assert_array_equal(p0.loc[first.index], first["pvalue"])
    assert not {"WNT10A", "LINC00427", "KIR3DL3"} & set(p0.index)  # NaN p-value rows dropped
    np.testing.assert_array_equal(res.n_indep.loc[first.index, "random.pheno0"],
                                  first["n_indep"])
    # the MAL2 duplicate keeps its first row
    assert res.pvalue.loc["MAL2", "random.pheno0"] == raw.loc[raw.gene_name == "MAL2",
                                                                "pvalue"].iloc[0]
    # −log10 p agrees with the pickled fixture for all but the README's 17 genes
    fixture = pd.read_parquet(gls_dir / "multixcan-random_phenotype0-pvalues.parquet"
                              ).set_index("gene")["value"]
    y = trait_values(res.pvalue[["random.pheno0"]])["random.pheno0"].reindex(fixture.index)
    close = np.isclose(y, fixture, rtol=0, atol=1e-12)
    assert close.sum() == 6425


def test_validation_slices(gls_dir, tmp_path):
    with pytest.raises(InputError, match="no_pvalue_column.*pvalue"):
        read_smultixcan([gls_dir / "random.pheno0-smultixcan-no_pvalue_column.txt"])
    with pytest.raises(InputError, match="no_gene_name_column.*gene_name"):
        read_smultixcan([gls_dir / "random.pheno0-smultixcan-no_gene_name_column.txt"])
    res = read_smultixcan([gls_dir / "random.pheno0-smultixcan-repeated_gene_names.txt"])
    assert res.report["duplicated"].iloc[0] > 0
    assert res.pvalue.index.is_unique
    full = read_smultixcan([gls_dir / "random.pheno0-smultixcan-full.txt"])
    assert full.report["rows"].iloc[0] == 54 and full.report["nan_pvalue"].iloc[0] == 3
    assert full.pvalue.shape == (51, 1)  # 54 unique genes, 3 with a NaN p-value


def test_trait_names_from_folder(gls_dir, tmp_path):
    for name in ("random.pheno0-gtex_v8-mashr-smultixcan.txt.gz",
                 "random.pheno6-gtex_v8-mashr-smultixcan.txt.gz"):
        shutil.copy(gls_dir / name, tmp_path / name)
    (tmp_path / "smultixcan_asthma_ccn30.tsv.gz").write_bytes(
        (gls_dir / "random.pheno0-gtex_v8-mashr-smultixcan.txt.gz").read_bytes())
    (tmp_path / "trait_0001-smultixcan.txt").write_text("gene_name\tpvalue\nA\t0.5\n")
    assert sorted(smultixcan_files(tmp_path)) == ["asthma", "random.pheno0", "random.pheno6",
                                                 "trait_0001"]
    (tmp_path / "asthma-smultixcan.txt").write_text("gene_name\tpvalue\nA\t0.5\n")
    with pytest.raises(InputError, match="two files give the trait name 'asthma'"):
        smultixcan_files(tmp_path)


def test_trait_values_zero_and_nan():
    P = pd.DataFrame({"a": [0.0, 1e-8, 0.5, np.nan], "b": [0.1, 0.2, 0.3, 0.4]},
                     index=list("wxyz"))
    y = trait_values(P)
    np.testing.assert_allclose(y["a"].iloc[:3], [9.0, 8.0, -np.log10(0.5)])
    assert np.isnan(y.loc["z", "a"])
    with pytest.raises(InputError, match="every p-value of trait"):
        trait_values(pd.DataFrame({"a": [0.0, 0.0]}))
