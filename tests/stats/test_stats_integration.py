"""Key statistics of the real default model (SmolLM2-135M) from the bundled Wikipedia text."""

import pytest
import torch

from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import load_model
from nse_engine.stats.second_moment import StatsSpec, layer_stats


@pytest.mark.integration
def test_default_model_layer_4(default_model_path):
    loaded = load_model(default_model_path, device="cpu")
    points = find_edit_points(loaded.model)
    spec = StatsSpec(n_tokens=1024)
    stats = layer_stats(loaded, points, [4], spec)[4]
    C = stats.moment
    assert C.shape == (1536, 1536) and C.dtype == torch.float64
    assert torch.allclose(C, C.T)
    values = torch.linalg.eigvalsh(C)  # 1,024 keys in 1,536 dimensions: singular, but never negative
    assert values[0] > -1e-6 * values[-1]  # beyond float32 rounding
    assert 1.0 < stats.trace < 1e4
    assert layer_stats(loaded, points, [4], spec)[4].cached
