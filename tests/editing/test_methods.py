"""The peer methods in the same engine: AlphaEdit's projection, MEMIT as NSE's degenerate case,
NAS norm anchoring and one method per project (ENCORE's early stop needs a model that learns:
tests/editing/test_methods_integration.py)."""

import math

import pytest
import torch

from nse_engine.editing.derive import for_method
from nse_engine.editing.methods import method_for
from nse_engine.editing.settings import apply_settings
from nse_engine.editing.norm_anchor import SKIP_RATIO, anchor_targets, reference_norm
from nse_engine.editing.session import EditingSession
from nse_engine.editing.target_state import compute_target_states
from nse_engine.editing.update import solve_projected_update
from nse_engine.errors import EditError, ProjectError, SettingsError
from nse_engine.method_names import METHODS
from nse_engine.progress import JobControl
from nse_engine.stats.nullspace import eigenbasis
from nse_engine.store import Project
from nse_engine.workspace import Workspace
from test_session import ROUND_1, ROUND_2
from tiny import tiny_hparams, tiny_loaded


def _second_moment(d_ff: int, rank: int, seed: int) -> torch.Tensor:
    """A key second moment with `rank` strong directions and d_ff - rank nearly empty ones."""
    generator = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(d_ff, d_ff, generator=generator, dtype=torch.float64))[0]
    values = torch.cat([torch.rand(rank, generator=generator, dtype=torch.float64) + 1.0,
                        torch.full((d_ff - rank,), 1e-4, dtype=torch.float64)])
    return basis @ torch.diag(values) @ basis.T


def test_alphaedit_update_leaves_preserved_directions_alone_and_meets_its_normal_equations():
    torch.manual_seed(3)
    n, d_ff, hidden, l2 = 5, 48, 12, 10.0
    moment = _second_moment(d_ff, rank=20, seed=4)
    basis = eigenbasis(moment)
    projection = basis.projection(0.02)
    preserved = basis.vectors[:, basis.values >= 0.02]  # (d_ff, 20): what general text uses
    assert preserved.shape[1] == 20
    keys = torch.randn(n, d_ff)
    residuals = torch.randn(n, hidden)
    earlier = torch.randn(7, d_ff, dtype=torch.float64)
    kp = earlier.T @ earlier
    update = solve_projected_update(layer=2, keys=keys, residuals=residuals, projection=projection, kp=kp,
                                    update_norm_weight=l2)
    delta = update.delta()  # (hidden, d_ff): ΔW
    assert torch.allclose(delta @ preserved, torch.zeros(hidden, preserved.shape[1], dtype=torch.float64), atol=1e-8)
    k = keys.double()
    lhs = (projection @ (k.T @ k + kp) + l2 * torch.eye(d_ff, dtype=torch.float64)) @ delta.T  # (d_ff, hidden)
    rhs = projection @ k.T @ residuals.double()
    assert torch.allclose(lhs, rhs, rtol=1e-4, atol=1e-4)


def test_nullspace_threshold_for_an_energy_share_keeps_that_share_free():
    moment = _second_moment(64, rank=16, seed=5)
    basis = eigenbasis(moment)
    threshold = basis.threshold_for_energy(0.01)
    assert basis.free_energy_share(threshold) <= 0.01
    assert basis.free_directions(threshold).shape[1] == 48  # the 48 nearly empty directions


def test_an_alphaedit_round_keeps_general_text_keys_output_unchanged():
    loaded = tiny_loaded()
    nse = tiny_hparams()
    hp = for_method(nse, "alphaedit", alphaedit_l2=1.0, nullspace_threshold=1e9)  # P = I: a plain projected solve
    session = EditingSession(loaded, hp)
    session.prepare(JobControl())
    threshold = float(torch.quantile(torch.linalg.eigvalsh(session.second_moments[2]), 0.5))
    session.hparams = session.hparams.with_overrides(nullspace_threshold=threshold)
    before = {l: session.points.weight_view(l).double().clone() for l in session.layers}
    result = session.apply_round(ROUND_1)
    assert all(o.applied for o in result.outcomes) and result.editing_passes == 1
    for layer in session.layers:
        basis = eigenbasis(session.second_moments[layer])
        preserved = basis.vectors[:, basis.values >= threshold]
        change = session.points.weight_view(layer).double() - before[layer]
        assert change.abs().max() > 0
        assert (change @ preserved).abs().max() < 1e-5 * change.abs().max() * preserved.shape[0]


def test_memit_is_nse_with_every_neuron_one_pass_and_even_shares_except_for_rewinding():
    nse = tiny_hparams(max_iterations=3, layer_share_ratio=0.9)
    memit = for_method(nse, "memit", 0.0, 0.02)
    as_nse = memit.with_overrides(method="nse")
    assert (memit.solve.neuron_threshold, memit.passes.max_iterations, memit.solve.layer_share_ratio) == (1.0, 1, 1.0)
    assert memit.passes.alpha == 0 and math.isinf(memit.passes.upper_bound) and not memit.passes.refresh_drifted

    by_memit = EditingSession(tiny_loaded(), memit)
    by_nse = EditingSession(tiny_loaded(), as_nse)
    by_memit.apply_round(ROUND_1)
    by_nse.apply_round(ROUND_1)
    for l in by_memit.layers:  # on the first round the current weights are the original ones
        assert torch.equal(by_memit.points.weight(l), by_nse.points.weight(l))

    # from the second round on, MEMIT aims at target states of the edited model
    with torch.enable_grad():
        edited_z = compute_target_states(by_memit.loaded.model, by_memit.loaded.tokenizer, by_memit.points,
                                         ROUND_2, memit, by_memit.prefixes, JobControl()).z
    by_memit.apply_round(ROUND_2)
    assert torch.allclose(by_memit.rounds[-1].targets, edited_z)
    by_nse.apply_round(ROUND_2)
    assert not torch.allclose(by_nse.rounds[-1].targets, edited_z)


def test_norm_anchoring_rescales_target_values_to_the_anchor_and_skips_far_ones():
    torch.manual_seed(0)
    h = torch.randn(4, 8)
    mlp_output = torch.randn(4, 8)
    z = h + torch.randn(4, 8)
    z[3] = h[3] + 50 * torch.ones(8)  # a target value far beyond twice the anchor
    anchor = 3.0
    anchored = anchor_targets(z, h, mlp_output, anchor)
    value = mlp_output + (anchored.z - h)
    kept = ~anchored.skipped
    assert anchored.skipped.tolist() == [bool(n > SKIP_RATIO * anchor) for n in anchored.value_norm]
    assert anchored.skipped[3] and torch.equal(anchored.z[3], h[3])
    assert torch.allclose(value[kept].norm(dim=1), torch.full((int(kept.sum()),), anchor))
    assert reference_norm(torch.tensor([1.0] * 19 + [100.0])) == pytest.approx(1.0)  # the top 5 % is dropped


def test_a_nas_round_skips_the_edit_beyond_twice_the_anchor_and_applies_the_other():
    loaded = tiny_loaded()
    probe = EditingSession(tiny_loaded(), tiny_hparams())
    probe.prepare(JobControl())
    with torch.enable_grad():
        states = compute_target_states(probe.loaded.model, probe.loaded.tokenizer, probe.points, ROUND_1,
                                       probe.hparams, probe.prefixes, JobControl())
    norms = (probe.reader.mlp_output_at_last_layer(ROUND_1) + states.z - states.h_init).norm(dim=1)  # ‖v*‖
    assert norms.max() > norms.min() * 1.01
    anchor = float(norms.sum()) / (2 * SKIP_RATIO)  # between half of each: only the larger one is skipped
    session = EditingSession(loaded, tiny_hparams(norm_anchoring=True, norm_anchor=anchor))
    result = session.apply_round(ROUND_1)
    larger = int(norms.argmax())
    assert [o.applied for o in result.outcomes] == [i != larger for i in range(2)]
    assert "anchor" in result.outcomes[larger].reason
    assert session.n_edits == 1


def test_each_method_key_has_its_method_and_alphaedit_refuses_pulling_back():
    assert [method_for(key).key for key in METHODS] == list(METHODS)
    with pytest.raises(ValueError, match="method must be one of"):
        method_for("rome")
    alphaedit = for_method(tiny_hparams(), "alphaedit", 1.0, 0.02)
    with pytest.raises(SettingsError, match="refresh_drifted is NSE's"):
        apply_settings(alphaedit, {"refresh_drifted": "true"}, n_layers=4)
    with pytest.raises(ValueError, match="refresh_drifted is NSE's"):
        EditingSession(tiny_loaded(), alphaedit.with_overrides(refresh_drifted=True))
    memit = for_method(tiny_hparams(), "memit", 0.0, 0.02)
    assert apply_settings(memit, {"refresh_drifted": "true"}, n_layers=4).passes.refresh_drifted


def test_the_method_is_fixed_per_project(tmp_path):
    folder = tmp_path / "p"
    with Project.create(folder) as project:
        project.meta.choose_method("nse")
    with pytest.raises(ProjectError, match="NSE.*MEMIT"):
        Workspace.open(tiny_loaded(), folder, method="memit")
    with pytest.raises(ProjectError, match="unknown editing method"):
        Workspace.open(tiny_loaded(), folder, method="rome")

    session = EditingSession(tiny_loaded(), for_method(tiny_hparams(), "alphaedit", 1.0, 1e9))
    session.apply_round(ROUND_1)
    session.save_state(tmp_path / "state.safetensors")
    resumed = EditingSession.from_state(tiny_loaded(), tmp_path / "state.safetensors")
    assert resumed.hparams.method == "alphaedit"
    with pytest.raises(EditError, match="cannot change"):
        resumed.apply_round(ROUND_2, hparams=resumed.hparams.with_overrides(method="nse", refresh_drifted=False))


def test_a_new_projects_switches_are_kept_before_and_after_its_first_batch(tmp_path, shared_cache):
    folder = tmp_path / "p"
    with Workspace.open(tiny_loaded(), folder, method="memit", settings={"encore": True}).closing() as ws:
        switches = ws.hparams.switches
        assert (ws.hparams.method, switches.encore, switches.norm_anchoring) == ("memit", True, False)
    with Workspace.open(tiny_loaded(), folder).closing() as ws:  # reopened before any batch
        assert (ws.hparams.method, ws.hparams.switches.encore) == ("memit", True)
        ids = ws.project.queue.queue_facts(ROUND_1)
        ws.run_batch(ids[:1])
    with Workspace.open(tiny_loaded(), folder, settings={"encore": True}).closing() as ws:  # from its state
        assert (ws.hparams.method, ws.hparams.switches.encore) == ("memit", True)
    with pytest.raises(ProjectError, match="encore=True"):
        Workspace.open(tiny_loaded(), folder, settings={"encore": False})
