import pytest
import torch

from nse_engine.model.loading import LoadedModel
from tiny import make_model, make_tokenizer


@pytest.fixture(scope="module")
def tiny_llama() -> LoadedModel:
    tokenizer = make_tokenizer()
    return LoadedModel(make_model("llama", tokenizer), tokenizer, "tiny", "tiny-llama", torch.device("cpu"), torch.float32)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine they only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
