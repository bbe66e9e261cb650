import pytest

from nse_engine.model.loading import LoadedModel
from tiny import tiny_loaded


@pytest.fixture(scope="module")
def tiny_llama() -> LoadedModel:
    return tiny_loaded("llama")


