"""Regularisation that follows the session: light for a session's first edits, full once Kp holds many.

1000 edits on a small model need λ (general text's weight) and β (earlier edits' weight) well
above the paper's balance, or the edits drift and the model loses fluency; the first hundred
edits of a session do not, and the strong settings only make them take less. So a round that
starts with n earlier edits in Kp uses

    share(n) = schedule_start + (1 − schedule_start) · min(1, n / schedule_ramp_edits)
    λ(n) = share(n) · mom2_update_weight          β(n) = 1 + share(n) · (earlier_edits_weight − 1)

`schedule_ramp_edits` 0 turns the schedule off (λ and β as set, the paper's behaviour).
"""

from __future__ import annotations

from nse_engine.editing.hparams import NseHyperParams


def regularisation_share(hp: NseHyperParams, earlier_edits: int) -> float:
    """share(n) above: 1 when the schedule is off."""
    if not hp.solve.schedule_ramp_edits:
        return 1.0
    progress = min(1.0, earlier_edits / hp.solve.schedule_ramp_edits)
    return hp.solve.schedule_start + (1.0 - hp.solve.schedule_start) * progress


def settings_for_round(hp: NseHyperParams, earlier_edits: int) -> NseHyperParams:
    """The settings a round uses when Kp already holds `earlier_edits` edits."""
    share = regularisation_share(hp, earlier_edits)
    if share == 1.0:
        return hp
    return hp.replace(
        mom2_update_weight=share * hp.solve.mom2_update_weight,
        earlier_edits_weight=1.0 + share * (hp.solve.earlier_edits_weight - 1.0),
    )


def schedule_table(hp: NseHyperParams, points: tuple[int, ...] = (0, 100, 200, 500, 1000)) -> list[tuple[int, float, float]]:
    """(earlier edits, λ, β) at a few points of a session, for the Advanced settings and the docs."""
    solves = [(n, settings_for_round(hp, n).solve) for n in points]
    return [(n, solve.mom2_update_weight, solve.earlier_edits_weight) for n, solve in solves]
