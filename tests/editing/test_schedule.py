"""λ and β follow the session: a fraction at its start, the full values once Kp holds enough edits."""

import pytest

from nse_engine.editing.schedule import schedule_table, settings_for_round
from nse_engine.editing.session import EditingSession
from test_session import ROUND_1, ROUND_2
from tiny import tiny_hparams, tiny_loaded


def test_the_schedule_grows_linearly_to_the_full_settings():
    hp = tiny_hparams(mom2_update_weight=1000.0, earlier_edits_weight=10.0, schedule_ramp_edits=400, schedule_start=0.1)
    assert settings_for_round(hp, 0).solve.mom2_update_weight == pytest.approx(100.0)
    assert settings_for_round(hp, 0).solve.earlier_edits_weight == pytest.approx(1.9)
    assert settings_for_round(hp, 200).solve.mom2_update_weight == pytest.approx(550.0)
    assert settings_for_round(hp, 400).solve.mom2_update_weight == pytest.approx(1000.0)
    assert settings_for_round(hp, 4000).solve.earlier_edits_weight == pytest.approx(10.0)
    assert [n for n, _, _ in schedule_table(hp)] == [0, 100, 200, 500, 1000]
    assert settings_for_round(tiny_hparams(), 10_000) == tiny_hparams()  # off: the settings as given


def test_each_round_records_the_regularisation_it_used():
    hp = tiny_hparams(mom2_update_weight=10.0, earlier_edits_weight=4.0, schedule_ramp_edits=4, schedule_start=0.5)
    session = EditingSession(tiny_loaded(), hp)
    session.apply_round(ROUND_1)
    session.apply_round(ROUND_2)
    used = [(r.hparams["mom2_update_weight"], r.hparams["earlier_edits_weight"]) for r in session.rounds]
    assert used == [pytest.approx((5.0, 2.5)), pytest.approx((7.5, 3.25))]
    assert session.hparams.solve.mom2_update_weight == 10.0  # the session's own settings stay as set
