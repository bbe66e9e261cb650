"""Loading a model from the Model screen: progress, description, errors as dialogs."""

from __future__ import annotations

from app.conftest import error_dialogs, load, wait_idle


def test_title_and_tabs(window):
    assert window.windowTitle().startswith("NSE Studio")
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Model", "Edit", "Queue", "Import", "Log", "Retention", "Chat"]


def test_load_tiny_model_shows_its_description(qtbot, window, tiny_model_dir):
    load(qtbot, window, str(tiny_model_dir))
    labels = window.model_view.info_labels
    assert "GPT2LMHeadModel" in labels["architecture"].text()
    assert labels["layers"].text() == "4"
    assert labels["device"].text() == "cpu"
    assert "tiny-gpt2" in window.windowTitle()
    assert window.model_view.recent_list.count() >= 1
    assert not error_dialogs()


def test_bad_model_path_is_a_dialog_not_a_traceback(qtbot, window, tmp_path):
    window.model_view.load(str(tmp_path / "missing"))
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=30_000)
    dialog = error_dialogs()[0]
    assert "does not exist" in dialog.text()
    assert "Traceback" not in dialog.text()
    wait_idle(qtbot, window.session)
    dialog.close()


def test_edit_form_previews_what_the_model_answers_now(qtbot, window, tiny_model_dir):
    load(qtbot, window, str(tiny_model_dir))
    form = window.edit_form
    form.subject.setText("Danielle Darrieux")
    form.prompt.setText("The mother tongue of {} is")
    qtbot.waitUntil(lambda: "<b>" in form.preview_label.text(), timeout=30_000)
    assert form.preview_label.text().startswith("The mother tongue of Danielle Darrieux is<b>")
    assert not form.add_button.isEnabled()  # no new object yet, and no project open
