import pytest
from celeba_fixture import write_celeba_fixture


@pytest.fixture
def celeba_fixture():
    """The writer of CelebA-layout folders (tests/data/celeba_fixture.py)."""
    return write_celeba_fixture
