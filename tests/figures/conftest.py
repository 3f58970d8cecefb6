import pytest
from figure_data import make_figure_data

from diffusion_circuits.figures.data import FigureData


@pytest.fixture(scope="module")
def figure_data() -> FigureData:
    """Synthetic figure data with every optional control present (see figure_data.py)."""
    return make_figure_data()
