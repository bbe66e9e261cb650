"""Charts that read at a glance: whole edits on the x axis, an empty project says what will appear,
and with fewer than three batches the figures are shown as numbers beside the charts."""

from __future__ import annotations

import pytest

from nse_engine.store.log_rows import RetentionRow

from nse_app.session import Session
from nse_app.views.retention_view import RetentionView


@pytest.fixture
def view(qtbot, loop):
    session = Session()
    view = RetentionView(session)
    qtbot.addWidget(view)
    view.show()
    yield view
    session.shutdown()


def _row(batch_id: int, edits: int, retained: int = 4) -> RetentionRow:
    return RetentionRow(batch_id, edits, evaluated=5, retained=retained, first_batch_share=0.8, efficacy=1.0,
                        generalization=0.75, specificity=0.9, fluency=4.91, says_new=0.6)


def test_an_empty_project_says_what_each_chart_will_show(view):
    view.show_series([])
    for chart in (view.retention, view.quality, view.fluency):
        assert chart.empty_text.isVisible()
        assert chart.empty_text.toPlainText().startswith("After each batch")
    assert not view.cards.isVisible()


def test_one_batch_shows_its_figures_as_numbers(view):
    view.show_series([_row(1, 5)])
    assert view.cards.isVisible()
    cards = {key: label.text() for key, label in view.card_labels.items()}
    assert "<b>100%</b>" in cards["efficacy"] and "<b>75%</b>" in cards["generalization"]
    assert "<b>4.91</b>" in cards["fluency"] and "<b>60%</b>" in cards["says_new"]
    assert "<b>—</b>" not in cards["share"]  # 4 of 5 earlier edits
    assert not view.retention.empty_text.isVisible()
    view.show_series([_row(1, 5), _row(2, 10), _row(3, 15)])
    assert not view.cards.isVisible()  # three points read as a curve


def test_the_edits_axis_has_whole_numbers_only(view):
    view.show_series([_row(1, 1), _row(2, 2)])
    axis = view.retention.plot.getAxis("bottom")
    ticks = [value for _spacing, values in axis.tickValues(0.0, 2.6, 400) for value in values]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert axis.tickStrings([1000.0, 2000.0], 1.0, 1000.0) == ["1,000", "2,000"]
