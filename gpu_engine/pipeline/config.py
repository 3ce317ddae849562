"""The ``gpu-engine run`` config: one YAML file, validated by pydantic before anything runs.

Every error names its key path and the line of the YAML file it is on, and all errors are
reported at once (:class:`ConfigError`). Unknown keys are errors. Paths are relative to the
config file's folder; input paths must exist. See ``docs/pipeline.md`` for every key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from ..errors import InputError


class ConfigError(InputError):
    """A config with mistakes: ``errors`` is the list of (key path, line, message)."""

    def __init__(self, path: Path, errors: list[tuple[str, int | None, str]]):
        self.path, self.errors = path, errors
        lines = [f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}; nothing was run"]
        for key, line, msg in errors:
            where = f"line {line}: " if line else ""
            lines.append(f"  {where}{key}: {msg}")
        super().__init__("\n".join(lines))


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base")
    return value if value.is_absolute() or base is None else Path(base) / value


def _existing(value: Path, info: ValidationInfo) -> Path:
    p = _resolve(value, info)
    if not (info.context or {}).get("check_files", True):
        return p
    if not p.exists():
        raise ValueError(f"{p} does not exist")
    return p


def _existing_genotypes(value: Path, info: ValidationInfo) -> Path:
    p = _resolve(value, info)
    if (info.context or {}).get("check_files", True) and not (
            p.exists() or p.with_name(p.name + ".bed").exists()):
        raise ValueError(f"{p} does not exist (nor {p}.bed: a PLINK prefix)")
    return p


InputPath = Annotated[Path, AfterValidator(_existing)]
GenotypePath = Annotated[Path, AfterValidator(_existing_genotypes)]
OutPath = Annotated[Path, AfterValidator(_resolve)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderInput(_Strict):
    """A folder of per-tissue or per-trait files; ``pattern``'s first group is the name."""

    folder: InputPath
    pattern: str


class GwasInput(FolderInput):
    pattern: str = r"(.*)\.tsv\.gz"
    columns: dict[str, str] = Field(default_factory=dict, description=(
        "GWAS column names by role: snp, effect_allele, non_effect_allele, zscore, pvalue, "
        "beta, se, odds_ratio, beta_sign, chromosome, position (MetaXcan's --*_column)"))

    @model_validator(mode="after")
    def _roles(self):
        from dataclasses import fields

        from ..twas import GwasColumns

        known = {f.name for f in fields(GwasColumns)}
        bad = sorted(set(self.columns) - known)
        if bad:
            raise ValueError(f"unknown GWAS column role(s) {bad}; known: {sorted(known)}")
        return self


class ModelsInput(FolderInput):
    pattern: str = r"(.*)\.db"
    snp_key: Literal["rsid", "varID"] = "rsid"


class CovariancesInput(FolderInput):
    pattern: str = r"(.*)\.txt\.gz"


class SMultiXcanInput(FolderInput):
    pattern: str = r"(.*)-smultixcan\.txt"


class DrugsInput(_Strict):
    signatures: InputPath
    gold_standard: InputPath
    trait_disease: InputPath
    spredixcan: InputPath | None = Field(None, description=(
        "a folder of per-tissue genes × traits z matrices; default: the spredixcan stage's"))


class DecodeInput(_Strict):
    binding: InputPath = Field(description="binding-map folder (`gpu-engine decode features`)")
    expression: InputPath = Field(description="genes × tissues log2(TPM + 0.25)")
    splits: InputPath | None = None
    regulator_expression: InputPath | None = None


class ExpressionModelsInput(_Strict):
    genotypes: GenotypePath = Field(description=(
        "PLINK 1 prefix, GTEx-style dosage text or a genotype folder"))
    expression: InputPath = Field(description="samples × genes expression of one tissue")
    genes: InputPath = Field(description="gene, chromosome, start, end (genename, gene_type)")
    covariates: InputPath | None = None
    tissue: str = "tissue"


class Inputs(_Strict):
    gwas: GwasInput | None = None
    models: ModelsInput | None = None
    covariances: CovariancesInput | None = None
    ld: InputPath | None = None
    genes: InputPath | None = None
    smultixcan: SMultiXcanInput | None = None
    gene_corr: InputPath | None = None
    expression: InputPath | None = None
    priors: list[InputPath] = Field(default_factory=list)
    lv_model: InputPath | None = None
    lv_l2: float | None = Field(None, ge=0)
    drugs: DrugsInput | None = None
    decode: DecodeInput | None = None
    expression_models: ExpressionModelsInput | None = None
    gene_sets: list[InputPath] = Field(default_factory=list, description=(
        "gene sets to test for enrichment in every LV (GMT, a long gene/pathway table or a "
        "wide 0/1 matrix)"))
    sample_metadata: InputPath | None = Field(None, description=(
        "samples × attributes (first column the sample ids of the compendium) for the LVs' "
        "sample contexts"))


class _Stage(_Strict):
    enabled: bool = True
    backend: Literal["cpu", "gpu", "rapids", "auto"] | None = None


class SPrediXcanStage(_Stage):
    trained_models: list[Literal["en", "cnn"]] = Field(default_factory=list, description=(
        "the expression_models stage's databases that join inputs.models as tissues: en "
        "(tissue name inputs.expression_models.tissue) and cnn (<tissue>_cnn); S-MultiXcan "
        "and the gene correlations then use them too"))
    cache_covariances_gib: float = Field(4.0, ge=0, description=(
        "keep each tissue's SNP covariance (its model genes) in memory across traits, up to "
        "this many GiB; 0: read them again for every trait (always so with a Dask client)"))


class SMultiXcanStage(_Stage):
    cutoff_condition_number: float = Field(30.0, gt=1)


class GeneCorrStage(_Stage):
    within_mb: float | None = Field(5.0, gt=0)
    condition_number: float = Field(30.0, gt=1)


class PlierStage(_Stage):
    k: int | None = Field(None, ge=2)
    max_iter: int = Field(350, ge=1)
    seed: int = 0


class NullCalibration(_Strict):
    n_null: int = Field(1000, ge=10)
    seed: int = 0
    batch: int = Field(200, ge=1, description=(
        "null traits per checkpoint; the results do not depend on it"))
    exclude_inflated: bool = Field(False, description=(
        "drop the LVs the calibration flags as inflated from gls.parquet (FDR over the rest; "
        "the full table kept as gls_all_lvs.parquet) and from the conditional tests, as "
        "PhenoPLIER excluded them"))


class GLSStage(_Stage):
    mode: Literal["submatrix", "full"] = "submatrix"
    predictor: Literal["binary", "continuous"] = "binary"
    null_calibration: NullCalibration | None = None
    conditional: bool = Field(False, description=(
        "also test each LV given the trait's other significant LVs (forward selection, "
        "continuous conditioning columns): gls_conditional.parquet"))
    trait_chunk: int = Field(200, ge=1, description=(
        "traits per checkpoint; the results do not depend on it (FDR pooled at the end)"))


class LVGenesStage(_Stage):
    fdr: float = Field(0.05, gt=0, lt=1, description="the significant LV–trait pairs")
    top_fraction: float = Field(0.01, gt=0, le=1)


class ClusterStage(_Stage):
    families: list[Literal["kmeans", "spectral", "gmm", "agglomerative", "dbscan"]] = Field(
        default_factory=lambda: ["kmeans", "gmm", "agglomerative", "dbscan"])
    k_max: int = Field(10, ge=2)
    n_seeds: int = Field(2, ge=1)
    family_size: int = Field(40, ge=2)
    seed: int = 0
    fdr: float = Field(0.05, gt=0, lt=1, description="traits with an LV at this FDR are clustered")


class DrugsStage(_Stage):
    spaces: list[Literal["gene", "module"]] = Field(default_factory=lambda: ["gene", "module"])
    top_k: list[int | Literal["all"]] = Field(default_factory=lambda: ["all", 50, 100, 250])
    n_permutations: int = Field(200, ge=0)
    seed: int = 0


class DecodeStage(_Stage):
    restarts: int = Field(10, ge=1)
    epochs: int = Field(100, ge=1)
    patience: int = Field(10, ge=1)
    min_genes: int = Field(30, ge=0)
    seed: int = 0
    explain_modules: bool = Field(True, description=(
        "also rank, per LV of the run's model, the regulators whose binding predicts it"))
    module_restarts: int = Field(3, ge=1)
    permutations: int = Field(1, ge=0)


class ExpressionModelsStage(_Stage):
    alpha: float = Field(0.5, gt=0, le=1, description="elastic-net mixing (PredictDB: 0.5)")
    window: float = Field(1e6, ge=0, description="cis window around the gene (bp)")
    maf: float = Field(0.01, ge=0, le=0.5)
    seed: int = 0
    cnn: bool = Field(False, description="also the dlfa CNN (needs torch), exported as "
                      "a PredictDB database through its linear projection")
    cnn_restarts: int = Field(1, ge=1)
    cnn_epochs: int = Field(20, ge=1)


class LVEnrichStage(_Stage):
    top_fraction: float = Field(0.05, gt=0, lt=1, description=(
        "sample contexts: an LV's top samples by B"))
    min_samples: int = Field(3, ge=1, description="attribute values with fewer samples are "
                             "not tested")
    attributes: list[str] | None = Field(None, description=(
        "metadata columns to test; default every column with 2–1,000 values"))


class CCCStage(_Stage):
    enabled: bool = False
    lv_top_genes: int = Field(15, ge=2, description="the genes: the union of each LV's top N")
    max_genes: int = Field(2000, ge=2, description="at most this many genes (by loading)")


class Stages(_Strict):
    spredixcan: SPrediXcanStage = SPrediXcanStage()
    smultixcan: SMultiXcanStage = SMultiXcanStage()
    gene_corr: GeneCorrStage = GeneCorrStage()
    plier: PlierStage = PlierStage()
    gls: GLSStage = GLSStage()
    lv_genes: LVGenesStage = LVGenesStage()
    lv_enrich: LVEnrichStage = LVEnrichStage()
    cluster: ClusterStage = ClusterStage()
    drugs: DrugsStage = DrugsStage()
    decode: DecodeStage = DecodeStage()
    ccc: CCCStage = CCCStage()
    expression_models: ExpressionModelsStage = ExpressionModelsStage()


class Report(_Strict):
    title: str = "gpu_engine analysis"


class Config(_Strict):
    out: OutPath
    backend: Literal["cpu", "gpu", "rapids", "auto"] = "auto"
    scheduler: str | None = None
    inputs: Inputs = Inputs()
    stages: Stages = Stages()
    report: Report = Report()

    @model_validator(mode="after")
    def _trained_models(self):
        trained = self.stages.spredixcan.trained_models
        if not trained:
            return self
        em = self.inputs.expression_models
        if em is None:
            raise ValueError("stages.spredixcan.trained_models needs inputs.expression_models "
                             "(the cohort the models are trained on)")
        if "cnn" in trained and not self.stages.expression_models.cnn:
            raise ValueError("stages.spredixcan.trained_models lists cnn but "
                             "stages.expression_models.cnn is false")
        return self


# ------------------------------------------------------------------------------ loading
def _line_map(text: str) -> dict[tuple, int]:
    """Key path (tuple of keys / list indices) → 1-based line of the YAML node."""
    import yaml

    lines: dict[tuple, int] = {}

    def walk(node, path):
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _message(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown key (check its spelling; see docs/pipeline.md for every key)"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg


def load_config(path: str | Path, *, check_files: bool = True) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` with every mistake at once."""
    import yaml

    path = Path(path)
    if not path.exists():
        from ..errors import InputFileNotFoundError

        raise InputFileNotFoundError(f"config {path} does not exist")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(path, [("(YAML)", mark.line + 1 if mark else None,
                                  str(getattr(exc, "problem", exc)))]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, [("(top level)", 1, "the config must be a mapping of keys")])
    return validate_config(data, base=path.parent, source=path, lines=_line_map(text),
                           check_files=check_files)


def validate_config(data: dict[str, Any], *, base: Path, source: Path | None = None,
                    lines: dict[tuple, int] | None = None, check_files: bool = True) -> Config:
    """Validate a config mapping (paths relative to ``base``)."""
    lines = lines or {}
    try:
        cfg = Config.model_validate(data, context={"base": base, "check_files": check_files})
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith(
                "function-")))
            # the nearest enclosing key that has a line (a missing key has none itself)
            line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines),
                        None)
            errors.append((".".join(str(x) for x in loc) or "(top level)", line, _message(e)))
        raise ConfigError(source or base / "config.yaml", errors) from None
    return cfg
