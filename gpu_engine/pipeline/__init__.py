"""``gpu-engine run``: the whole analysis from one config (spec ``shared/specs/pipeline.md``).

:mod:`.config` (the pydantic schema, every error at once with key path and line),
:mod:`.stages` (each stage a call of the public API), :mod:`.runner` (plan, fingerprints,
reuse, checkpoints, logs), :mod:`.example` (the synthetic-world example). Docs:
``docs/pipeline.md``.
"""

from .config import Config, ConfigError, load_config
from .runner import plan, run, stage_names

__all__ = ["Config", "ConfigError", "load_config", "plan", "run", "stage_names"]
