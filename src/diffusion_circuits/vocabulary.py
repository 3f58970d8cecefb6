"""The study's fixed words: its datasets and the paper's seven layer groups.

Both the probe library (``probe/names.py``) and the study (``layout.py``) need them, and
the probe must not import study modules, so they live in this leaf module; it imports
only the standard library, so a stage's ``--help`` stays fast.
"""

from __future__ import annotations

__all__ = ["DATASETS", "LAYER_GROUPS"]

DATASETS = ("synthetic", "natural")

# In forward order: every table, figure and ranking lists the groups in this order.
LAYER_GROUPS = (
    "encoder_early",
    "encoder_middle",
    "encoder_late",
    "middle",
    "decoder_early",
    "decoder_middle",
    "decoder_late",
)
