"""Each screen fed the engine's records directly, with no model loaded: what it shows, and that a
batch's BatchChanges updates the queue and the chart without asking the engine again."""

from __future__ import annotations

import dataclasses
import time

import pytest
from PySide6.QtWidgets import QPushButton

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.fact_files.validation import FactProblem
from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.model.summary import ModelSummary
from nse_engine.progress import Progress
from nse_engine.project_summary import ProjectSummary
from nse_engine.store.log_rows import BatchChanges, LogRow, RetentionRow
from nse_engine.store.records import Batch, FilePreview, FileRow, ImportSummary, Retry, ScheduleStep

from nse_app import jobs
from nse_app.main_window import MainWindow
from nse_app.session import QueueRun, Session
from nse_app.views.edit_form import EditForm
from nse_app.views.import_view import ImportView
from nse_app.views.job_progress import JobProgress
from nse_app.views.log_view import STATUS_COLORS, LogView
from nse_app.views.model_view import ModelView
from nse_app.views.queue_view import QueueView, schedule_html
from nse_app.views.retention_view import RetentionView
from nse_app.views.written import BatchResult

from app.conftest import error_dialogs, wait_idle

PROJECT = ProjectSummary("/data/capitals", "capitals", "default", "nse", NseHyperParams.flat(
    layers=(2, 3, 4), v_lr=0.5, v_num_grad_steps=5, alpha=0.5, upper_bound=10.0, mom2_update_weight=1.0,
    neuron_threshold=0.8, source="derived"))


def request(fact_id: int, subject: str = "Danielle Darrieux") -> EditRequest:
    return EditRequest(subject, "The mother tongue of {} is", "English", "French", fact_id=fact_id)


def log_row(fact_id: int, status: str = "applied", retained: bool | None = True) -> LogRow:
    return LogRow(request(fact_id), status, 1, None, None, None, prob_new_before=0.1, prob_true_before=0.5,
                  prob_new_after=0.8, prob_true_after=0.05, prob_new_now=0.4, prob_true_now=0.2, retained=retained)


def batch(batch_id: int, fact_ids: tuple[int, ...], undone_at: str | None = None) -> Batch:
    return Batch(batch_id, "NSE", {}, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:05.123+00:00", 5.04,
                 "applied", fact_ids, len(fact_ids), None, None, undone_at)


def point(batch_id: int, edits: int, retained: int, evaluated: int) -> RetentionRow:
    return RetentionRow(batch_id, edits, evaluated, retained, first_batch_share=1.0, efficacy=0.9,
                        generalization=0.5, specificity=None, fluency=4.2)


def changes(batch_id: int, fact_ids: tuple[int, ...], new_point: RetentionRow | None, undone: bool = False) -> BatchChanges:
    return BatchChanges(batch_id, [] if undone else list(fact_ids), {}, None, undone=undone, point=new_point,
                        fact_ids=fact_ids)


@pytest.fixture
def session(qtbot, loop):
    s = Session()
    yield s
    s.shutdown()


def _asked_nothing(session: Session) -> bool:
    """True when no job reached the worker (the view used only what it was given)."""
    return not session.worker.busy and not session._tasks


def _cells(table, row: int) -> dict[str, str]:
    return {table.horizontalHeaderItem(c).text(): table.item(row, c).text() for c in range(table.columnCount())}


def test_log_view_shows_each_fact_with_its_probabilities_and_each_batch(qtbot, session):
    view = LogView(session)
    qtbot.addWidget(view)
    view.show_log([log_row(1), log_row(2, retained=False)], [batch(1, (1, 2))])
    first = _cells(view.facts_table, 0)
    assert (first["#"], first["Prompt"], first["New object"], first["Status"]) == (
        "1", "The mother tongue of Danielle Darrieux is", "English", "applied")
    assert (first["P(new) before"], first["P(new) after its batch"], first["P(new) now"]) == ("0.100", "0.800", "0.400")
    assert first["Retained"] == "yes" and _cells(view.facts_table, 1)["Retained"] == "no"
    retained = list(first).index("Retained")
    assert view.facts_table.item(1, retained).foreground().color().name() == STATUS_COLORS["failed"]
    assert _cells(view.batches_table, 0) == {
        "Batch": "1", "Method": "NSE", "Facts": "2", "Applied": "2", "Not held": "0", "Outcome": "applied", "Seconds": "5.0",
        "Finished": "2026-01-01 00:00:05 UTC", "Undone": "no"}
    assert view.count_label.text() == "2 facts, 1 batch"


def written_row(fact_id: int, held: bool | None, extra_passes: int = 0, continuation: str = " english <i>") -> LogRow:
    return dataclasses.replace(log_row(fact_id), held=held, extra_passes=extra_passes, continuation=continuation)


def test_log_view_says_what_held_and_highlights_the_new_object_in_what_the_model_wrote(qtbot, session):
    view = LogView(session)
    qtbot.addWidget(view)
    rows = [written_row(1, True), written_row(2, True, 2), written_row(3, False, 1, " French <b>"), log_row(4)]
    view.show_log(rows, [dataclasses.replace(batch(1, (1, 2, 3, 4)), not_held=1)])
    assert [_cells(view.facts_table, r)["Held"] for r in range(4)] == [
        "held", "held after 2 extra passes", "not held", ""]
    assert _cells(view.facts_table, 2)["Model wrote"] == " French <b>"
    held = list(_cells(view.facts_table, 0)).index("Held")
    assert view.facts_table.item(2, held).foreground().color().name() == STATUS_COLORS["failed"]
    assert _cells(view.batches_table, 0)["Not held"] == "1"

    view.facts_table.selectRow(0)  # the object is bold and coloured; the user's text is escaped
    assert "<b style='color:#1b7f3b'>english</b> &lt;i&gt;</i> — " in view.written_label.text()
    view.facts_table.selectRow(2)
    assert view.written_label.text().startswith("#3 The mother tongue of Danielle Darrieux is<i> French &lt;b&gt;</i>")
    assert "not held</span> (wanted <b>English</b>)" in view.written_label.text()
    view.facts_table.selectRow(3)
    assert view.written_label.text() == ""


def test_log_view_retries_the_selected_batch_or_every_batch_with_facts_that_did_not_hold(qtbot, session):
    view = LogView(session)
    qtbot.addWidget(view)
    batches = [dataclasses.replace(batch(1, (1,)), not_held=1), batch(2, (2,)),
               dataclasses.replace(batch(3, (3,), undone_at="2026-01-02T00:00:00+00:00"), not_held=1),
               dataclasses.replace(batch(4, (4,)), not_held=2)]
    view.show_log([], batches)
    assert view.retry_button.isEnabled() and view._retry_batches() == [1, 4]
    view.batches_table.selectRow(1)
    assert not view.retry_button.isEnabled()
    view.batches_table.selectRow(3)
    assert view.retry_button.isEnabled() and view._retry_batches() == [4]


def test_batch_result_counts_what_held_and_offers_retry_only_when_something_did_not(qtbot, session):
    result = BatchResult(session)
    qtbot.addWidget(result)
    assert result.isHidden()  # nothing checked yet
    result.show_rows([1, 2], [written_row(1, True), written_row(2, True, 1), written_row(3, False, 1)])
    assert not result.isHidden() and not result.retry_button.isHidden()
    assert result.summary.text() == "Batches 1, 2: held 2/3 (1 after extra passes)."
    assert result.facts.toPlainText().splitlines()[2] == (
        "#3 The mother tongue of Danielle Darrieux is english <i> — not held (wanted English)")
    result.show_rows([3], [written_row(1, True)])
    assert result.summary.text() == "Batch 3: held 1/1 (0 after extra passes)." and result.retry_button.isHidden()
    result.show_rows([4], [log_row(1)])  # a batch that did not check
    assert result.isHidden()


def test_queue_view_shows_the_schedule_as_a_table_or_off(qtbot, session):
    steps = [ScheduleStep(0, 0.2, 0.4, 1.5), ScheduleStep(1000, 1.0, 2.0, 3.5)]
    assert "off" in schedule_html([])
    table = schedule_html(steps)
    assert "<td>1,000</td><td>×1.00</td><td>2</td><td>3.5</td>" in table and "<td>×0.20</td>" in table


def test_log_view_asks_about_the_selected_fact(qtbot, session):
    view = LogView(session)
    qtbot.addWidget(view)
    view.show_log([log_row(1), log_row(2)], [])
    assert not view.ask_button.isEnabled()
    view.facts_table.selectRow(1)
    with qtbot.waitSignal(view.ask_requested) as asked:
        view.ask_button.click()
    assert asked.args[0] == request(2)


def test_retention_view_adds_a_batch_point_and_an_undo_takes_it_away(qtbot, session):
    view = RetentionView(session)
    qtbot.addWidget(view)
    first = point(1, 2, 0, 0)
    view.show_series([first])
    assert view.point_count == 1  # the first batch has no earlier edits, only its own share
    second = point(2, 4, 1, 2)
    view.apply_changes(changes(2, (3, 4), second))
    assert view.series == [first, second]
    assert view.point_count == 3 and view.quality_count == 4 and view.fluency_count == 2
    assert view.summary.text() == "2 batches, 4 edits applied. After batch 2, 50% of earlier edits are retained."
    view.apply_changes(changes(2, (3, 4), None, undone=True))
    assert view.series == [first]
    assert view.summary.text().startswith("1 batch, 2 edits applied.")  # one batch: not "1 batches"
    assert _asked_nothing(session)


def test_queue_view_drops_the_facts_a_batch_ran_without_asking_the_engine(qtbot, session):
    view = QueueView(session)
    qtbot.addWidget(view)
    view.show_facts([request(1), request(2, "Toko Yasuda"), request(3, "Heihe")])
    assert view.count_label.text() == "3 queued"
    view.apply_changes(changes(1, (1, 3, 7), point(1, 2, 0, 0)))
    assert [view.table.item(r, 1).text() for r in range(view.table.rowCount())] == ["Toko Yasuda"]
    assert _asked_nothing(session)


def test_queue_view_advanced_panel_hands_over_what_the_user_changed(qtbot, session):
    view = QueueView(session)
    qtbot.addWidget(view)
    session.project_changed.emit(PROJECT)
    assert {"alpha", "layers"} <= set(view.settings_panel.editors)
    assert "source" not in view.settings_panel.editors  # not where the settings came from
    assert view.settings_panel.editors["layers"].text() == "2–4"
    view.advanced.setChecked(True)
    assert view.overrides() == {}
    view.settings_panel.editors["alpha"].setValue(2.5)
    assert view.overrides() == {"alpha": "2.5"}
    view.advanced.setChecked(False)
    assert view.overrides() == {}  # a folded panel changes nothing
    wait_idle(qtbot, session)


def test_queue_view_edit_sends_the_selected_request(qtbot, session):
    view = QueueView(session)
    qtbot.addWidget(view)
    view.show_facts([request(1), request(2, "Toko Yasuda")])
    view.table.selectRow(1)
    with qtbot.waitSignal(view.edit_requested) as edited:
        view.edit_button.click()
    assert edited.args[0] == request(2, "Toko Yasuda")


def test_import_view_highlights_the_rows_with_problems(qtbot, session):
    view = ImportView(session)
    qtbot.addWidget(view)
    good = FileRow(2, {"subject": "Germany", "prompt": "The capital of {} is", "target_new": "Canberra"}, ())
    bad = FileRow(3, {"subject": "Greece", "prompt": "The language of {} is", "target_new": ""},
                  (FactProblem("target_new", "missing", "is required"),))
    view.show_rows(FilePreview("/tmp/facts.csv", "csv", ("2 rows had spaces trimmed",), (good, bad)))
    problems_col = view.table.columnCount() - 1
    assert [view.table.item(r, problems_col).text() for r in range(2)] == ["", "target_new: is required"]
    assert view.table.item(1, 0).background().color().name() != view.table.item(0, 0).background().color().name()
    assert view.import_button.text() == "Import 1 valid rows"
    assert not view.import_button.isEnabled()  # no project open
    assert view.summary.text().startswith("facts.csv — csv: 2 rows, 1 valid, 1 with problems")
    assert "2 rows had spaces trimmed" in view.summary.text() and "Open a project to import." in view.summary.text()
    view.show_imported(ImportSummary(1, (bad,), ()), "/tmp/facts.csv")
    assert view.summary.text().startswith("Imported 1 facts from facts.csv into the queue; 1 rows rejected.")
    assert view.export_button.isEnabled()


def test_import_view_shows_each_field_under_its_own_title(qtbot, session):
    view = ImportView(session)
    qtbot.addWidget(view)
    fields = {"subject": "Heihe", "prompt": "{} is a city in the country of", "target_new": "Tanzania",
              "questions": "Which country is Heihe in?", "neighborhood": "Wuhan is a city in the country of => China",
              "relation": "city_country"}
    view.show_rows(FilePreview("/tmp/facts.csv", "csv", (), (FileRow(2, fields, ()),)))
    cells = _cells(view.table, 0)
    assert cells["Relation"] == "city_country" and cells["Neighbourhood"] == fields["neighborhood"]
    assert cells["Questions (chat)"] == "Which country is Heihe in?" and cells["Problems"] == ""
    assert view.table.columnCount() == len(cells)  # no column without a title


def test_model_view_shows_the_model_and_the_projects_layers(qtbot, session):
    view = ModelView(session)
    qtbot.addWidget(view)
    view.show_model(ModelSummary("SmolLM2-135M-Instruct", "default", "LlamaForCausalLM", "llama", 30, 134_515_008,
                                 "float32", "cpu", "model.layers.<i>.mlp.down_proj", 1536, 576,
                                 ("weights 0.50 GiB on cpu", "peak 1.20 GiB")))
    labels = {key: label.text() for key, label in view.info_labels.items()}
    assert labels["architecture"] == "LlamaForCausalLM (llama)"
    assert labels["parameters"] == "134.5 M"
    assert labels["projection"] == "model.layers.N.mlp.down_proj — d_ff 1536, hidden 576"
    assert labels["memory"] == "peak 1.20 GiB"  # the short line; Details… shows the whole plan
    assert view.memory_details == "weights 0.50 GiB on cpu\npeak 1.20 GiB"
    assert labels["edit_layers"] == "set when a project is opened"
    view.show_project(PROJECT)
    assert view.info_labels["edit_layers"].text() == "2, 3, 4"
    assert "capitals" in view.project_label.text()
    assert view.method_label.text() == "Method: NSE"
    view.show_project(ProjectSummary("/data/a", "a", "default", "alphaedit", chosen={"norm_anchoring": True}, prepared=False))
    assert view.method_label.text() == "Method: AlphaEdit + NAS"
    wait_idle(qtbot, session)  # the recent models' list is read by the worker


def test_edit_form_validates_as_you_type(qtbot, session):
    session.project_info = PROJECT  # an open project lets the form queue
    form = EditForm(session)
    qtbot.addWidget(form)
    qtbot.keyClicks(form.subject, "Danielle Darrieux")
    qtbot.keyClicks(form.prompt, "The mother tongue of Leon Blum is")
    assert "neither '{}' nor the subject" in form.problems_label.text()
    assert not form.add_button.isEnabled()
    assert form.prompt.property("invalid")
    form.prompt.setText("The mother tongue of Danielle Darrieux is")
    qtbot.keyClicks(form.target_new, "English")
    assert form.add_button.isEnabled()
    assert form.request.prompt == "The mother tongue of {} is"


def test_edit_form_loads_a_queued_fact_as_it_was(qtbot, session):
    session.project_info = PROJECT
    form = EditForm(session)
    qtbot.addWidget(form)
    queued = EditRequest("Danielle Darrieux", "The mother tongue of {} is", "English", "French",
                         paraphrases=("Danielle Darrieux's mother tongue is",),
                         neighborhood=(NeighborhoodCheck("The mother tongue of Léon Blum is", "French"),),
                         relation="mother tongue", fact_id=7)
    form.edit_existing(queued)
    assert form.add_button.text() == "Save fact #7"
    assert form.request == EditRequest(**{**queued.__dict__, "fact_id": None})


def test_job_progress_shows_phase_counts_and_time_left(qtbot, session):
    progress = JobProgress(session)
    qtbot.addWidget(progress)
    progress._show(Progress("target states", 3, 12, "round 1", elapsed_s=30.0))
    assert progress.label.text() == "target states 3/12 · round 1 · about 2 min left"
    assert progress.bar.value() == 250


def test_job_progress_names_the_batch_of_a_queue_run_and_the_time_left_in_all(qtbot, session):
    progress = JobProgress(session)
    qtbot.addWidget(progress)
    session.queue_run = QueueRun(batches=5)
    progress._show(Progress("target states", 40, 100, elapsed_s=10.0))
    assert progress.label.text() == "Batch 1 of 5 · target states 40/100 · about 15 s left in this step"
    session.queue_run = QueueRun(batches=5, done=1, started=time.monotonic() - 60.0)  # one batch a minute
    progress._show(Progress("layer updates", 1, 3, elapsed_s=1.0))
    assert progress.label.text() == "Batch 2 of 5 · layer updates 1/3 · about 4 min left"


def test_the_queue_screen_has_no_second_progress_bar_or_cancel(qtbot, session):
    window = MainWindow(session)
    qtbot.addWidget(window)
    assert len(window.findChildren(JobProgress)) == 1
    assert [b for b in window.findChildren(QPushButton) if b.text() == "Cancel"] == [window.progress.cancel_button]


def test_window_title_names_the_project_and_the_model(qtbot, session):
    window = MainWindow(session)
    qtbot.addWidget(window)
    session.model_info = ModelSummary("tiny-gpt2", "/m", "GPT2LMHeadModel", "gpt2", 4, 1, "float32", "cpu", "h", 8, 4, ())
    session.project_info = PROJECT
    session.project_changed.emit(PROJECT)
    assert window.windowTitle() == "NSE Studio — capitals — tiny-gpt2"
    assert window.run_action.isEnabled()
    wait_idle(qtbot, session)
    window.close()


@pytest.mark.parametrize(("new", "message"), [
    ((True,), "Queued 1 fact that did not hold again; the next run edits it."),
    ((True, True, False), ("Queued 2 facts that did not hold again; 1 fact that did not hold is already queued; "
                           "the next run edits them.")),
    ((False, False), "2 facts that did not hold are already queued; the next run edits them."),
])
def test_retry_says_how_many_facts_it_queued_and_how_many_were_queued_already(qtbot, session, monkeypatch, new, message):
    window = MainWindow(session)
    qtbot.addWidget(window)

    job = session.job

    async def retries() -> list[Retry]:
        return [Retry(i, 1, 10 + i, is_new) for i, is_new in enumerate(new)]

    monkeypatch.setattr(session, "job", lambda fn, **kwargs: retries() if fn is jobs.requeue_not_held else job(fn, **kwargs))
    with qtbot.waitSignal(session.status_message):
        session.start(session.requeue_not_held([1]))
    assert window.statusBar().currentMessage() == message
    wait_idle(qtbot, session)
    assert not error_dialogs()
    window.close()


def test_a_flow_whose_view_was_closed_shows_no_error_dialog(qtbot, session):
    from PySide6.QtWidgets import QTableWidget

    table = QTableWidget()  # not given to qtbot: it is deleted before the test ends

    async def refresh_later() -> None:
        await session.job(jobs.recent_models)
        table.setRowCount(1)  # the table is gone by now

    task = session.start(refresh_later())
    table.deleteLater()
    qtbot.waitUntil(task.done, timeout=10_000)
    qtbot.wait(50)
    assert isinstance(task.exception(), RuntimeError) and not error_dialogs()
