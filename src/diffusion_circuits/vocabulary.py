"""The study's fixed words: its datasets and the layer groups (the paper's seven, and a
transformer's three).

Both the probe library (``probe/names.py``) and the study (``layout.py``) need them, and
the probe must not import study modules, so they live in this leaf module; it imports
only the standard library, so a stage's ``--help`` stays fast.
"""

from __future__ import annotations

__all__ = [
    "DATASETS",
    "LAYER_GROUPS",
    "TRANSFORMER_LAYER_GROUPS",
    "ALL_LAYER_GROUPS",
    "DEPTH_BANDS",
    "DEPTH_BAND_OF_GROUP",
]

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

# A transformer has no encoder, bottleneck or decoder: one stack of blocks, split by depth
# into thirds. Named apart from the U-Net's groups, so that no table puts a transformer's
# middle blocks beside a U-Net's bottleneck ("middle") as if they were one thing.
TRANSFORMER_LAYER_GROUPS = ("early_blocks", "middle_blocks", "late_blocks")

# Every group a table may hold, in the order tables list them.
ALL_LAYER_GROUPS = LAYER_GROUPS + TRANSFORMER_LAYER_GROUPS

# The paper's three depths ("early / middle / late layers", its information-flow claims),
# from the layer groups: the U-Net's first resolution level is early, its last two
# decoder levels late, everything between (the lower encoder levels, the bottleneck, the
# first decoder level) middle; a transformer's thirds map one to one.
DEPTH_BANDS = ("early", "middle", "late")
DEPTH_BAND_OF_GROUP = {
    "encoder_early": "early",
    "encoder_middle": "middle",
    "encoder_late": "middle",
    "middle": "middle",
    "decoder_early": "middle",
    "decoder_middle": "late",
    "decoder_late": "late",
    "early_blocks": "early",
    "middle_blocks": "middle",
    "late_blocks": "late",
}
