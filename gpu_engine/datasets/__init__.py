"""Synthetic worlds with planted ground truth — the engine's embedded default data.

:func:`generate_world` writes one (in the real input formats, plus the truth);
:class:`World` reads one back; :func:`check_world` verifies its planted structure.
"""

from .checks import check_world
from .config import SCALES, WorldConfig, world_config
from .world import World, generate_world

__all__ = ["SCALES", "World", "WorldConfig", "check_world", "generate_world", "world_config"]
