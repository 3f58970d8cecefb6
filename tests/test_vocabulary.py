"""The study's fixed words: every layer group has one depth band, in forward order."""

from diffusion_circuits.vocabulary import (
    ALL_LAYER_GROUPS,
    DEPTH_BAND_OF_GROUP,
    DEPTH_BANDS,
    LAYER_GROUPS,
    TRANSFORMER_LAYER_GROUPS,
)


def test_every_layer_group_has_a_depth_band():
    assert set(DEPTH_BAND_OF_GROUP) == set(ALL_LAYER_GROUPS)
    assert set(DEPTH_BAND_OF_GROUP.values()) == set(DEPTH_BANDS)


def test_bands_never_go_back_along_the_forward_order():
    for groups in (LAYER_GROUPS, TRANSFORMER_LAYER_GROUPS):
        depth = [DEPTH_BANDS.index(DEPTH_BAND_OF_GROUP[g]) for g in groups]
        assert depth == sorted(depth) and depth[0] == 0 and depth[-1] == len(DEPTH_BANDS) - 1
