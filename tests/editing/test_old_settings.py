"""Settings written by earlier versions still read: the state files, derived-settings caches and
batch records of old projects name v_loss_layer, a setting that nothing ever read and is gone."""

import pytest

from nse_engine.editing.hparams import NseHyperParams
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
