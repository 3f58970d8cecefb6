"""Fixtures over the tiny UNets of unets.py."""

import pytest
from unets import ARCHITECTURES, make_unet


@pytest.fixture(params=list(ARCHITECTURES))
def any_unet(request):
    return make_unet(request.param)


@pytest.fixture
def unet():
    return make_unet("paper")
