"""Settings written by earlier versions still read: the state files, derived-settings caches and
batch records of old projects name v_loss_layer, a setting that nothing ever read and is gone, and
the flat JSON settings are stored as did not change when they were grouped in sections."""

import dataclasses
import json
import re

import pytest

from nse_engine.editing.hparams import SECTIONS, STORED_ORDER, NseHyperParams
from nse_engine.editing.settings import parse_setting
from nse_engine.errors import SettingsError
from tiny import tiny_hparams


def test_settings_saved_with_v_loss_layer_read_as_before():
    current = tiny_hparams()
    saved = current.to_dict() | {"v_loss_layer": 3}  # as a state file of an earlier version holds them
    assert NseHyperParams.from_dict(saved) == current
    assert "v_loss_layer" not in current.to_dict()


def test_v_loss_layer_is_no_setting_any_more():
    with pytest.raises(SettingsError, match="unknown setting 'v_loss_layer'"):
        parse_setting("v_loss_layer", "3")


# A state file's settings as this version wrote them before the settings were grouped in sections.
STORED = ('{"layers": [1, 2], "v_lr": 0.5, "v_num_grad_steps": 6, "alpha": 0.0, "upper_bound": 1000000000.0, '
          '"mom2_update_weight": 10.0, "neuron_threshold": 0.8, "earlier_edits_weight": 1.0, "layer_share_ratio": 1.0, '
          '"clamp_norm_factor": 0.75, "v_weight_decay": 0.5, "target_stop_nll": 0.05, "target_stop_top1": false, '
          '"target_stop_margin": 0.0, "kl_factor": 0.0625, "subject_repeat_weight": 0.0, "chat_rows": false, '
          '"chat_subject_weight": 0.0, "max_iterations": 3, "refresh_drifted": false, "verify_passes": 0, '
          '"chat_passes": false, "schedule_ramp_edits": 0, "schedule_start": 1.0, "context_prefixes": 2, '
          '"context_prefix_tokens": 4, "stats_tokens": 1024, "method": "nse", "nullspace_threshold": 0.02, '
          '"update_norm_weight": 0.0, "norm_anchoring": false, "norm_anchor": 0.0, "encore": false, '
          '"encore_norm_weight": 0.0, "source": "derived", "notes": {}}')


# The same settings as written since stats_precision (2026-12-08): one key more, the rest unchanged.
STORED_NOW = STORED.replace('"source"', '"stats_precision": "float32", "source"')


def test_grouped_settings_store_the_same_flat_json_and_take_the_same_flat_names():
    assert json.dumps(tiny_hparams().to_dict()) == STORED_NOW
    read = NseHyperParams.from_dict(json.loads(STORED))  # a file from before stats_precision: float32, as it was
    assert read == tiny_hparams() and json.dumps(read.to_dict()) == STORED_NOW
    older = {k: v for k, v in json.loads(STORED).items() if k not in ("chat_passes", "target_stop_top1")}
    assert NseHyperParams.from_dict(older) == tiny_hparams()  # settings added since take their defaults
    changed = tiny_hparams().with_overrides(v_lr=0.25, alpha=1.0, encore=True, stats_tokens=64)
    assert (changed.target.v_lr, changed.passes.alpha, changed.switches.encore, changed.preparation.stats_tokens,
            changed.source) == (0.25, 1.0, True, 64, "derived+user")
    assert changed.value("v_lr") == 0.25 and changed.replace(v_lr=0.5).source == "derived+user"
    with pytest.raises(ValueError, match="unknown NSE setting"):
        tiny_hparams().replace(v_loss_layer=3)


def test_every_setting_is_stored():
    # a field left out of STORED_ORDER would be dropped from files, validation and --set without a word
    fields = [f.name for f in dataclasses.fields(NseHyperParams) if f.name not in SECTIONS]
    fields += [f.name for kind in SECTIONS.values() for f in dataclasses.fields(kind)]
    assert sorted(STORED_ORDER) == sorted(fields)


@pytest.mark.parametrize("name, value, says", [
    ("neuron_threshold", 0.0, "neuron_threshold must be in (0, 1]"),
    ("earlier_edits_weight", 0.0, "earlier_edits_weight must be positive"),
    ("max_iterations", 0, "max_iterations must be at least 1"),
    ("verify_passes", -1, "verify_passes must be 0 (check only, no extra passes) or more"),
    ("schedule_start", 1.5, "schedule_start must be in (0, 1]"),
    ("update_norm_weight", -1.0, "update_norm_weight must be ≥ 0"),
    ("method", "rome", "method must be one of nse, memit, alphaedit, got 'rome'"),
])
def test_each_settings_range_or_choices_is_checked_from_its_field(name, value, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        tiny_hparams().replace(**{name: value}).validate(n_layers=4)
