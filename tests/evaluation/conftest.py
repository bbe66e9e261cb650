import pytest
import torch

from nse_engine.model.loading import LoadedModel
from tiny import make_model, make_tokenizer


@pytest.fixture(scope="module")
def tiny_llama() -> LoadedModel:
    tokenizer = make_tokenizer()
    return LoadedModel(make_model("llama", tokenizer), tokenizer, "tiny", "tiny-llama", torch.device("cpu"), torch.float32)


