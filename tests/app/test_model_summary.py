"""The Model screen's record of a loaded model says what the engine knows of it: the loading
job reads the loaded model, its edit points and its memory plan, field by field."""

import threading

from nse_app import jobs
from nse_app.worker import JobContext
from nse_engine.progress import JobControl


def test_loading_a_model_summarises_what_the_engine_describes(tiny_model_dir):
    from nse_engine.editing.hparams import default_layers
    from nse_engine.editing.memory_plan import plan_for_loaded
    from nse_engine.model.architecture import find_edit_points

    engine = jobs.Engine()
    summary = jobs.load_model(engine, JobContext(JobControl(), threading.Event(), lambda value: None),
                              str(tiny_model_dir))
    loaded = engine.require_model()
    points = find_edit_points(loaded.model)
    described, edit_points = loaded.describe(), points.describe()
    assert {key: getattr(summary, key) for key in described} == described
    assert summary.projection == edit_points["mlp_output_projection"]
    assert (summary.d_ff, summary.hidden_size) == (edit_points["d_ff"], edit_points["hidden_size"])
    plan = plan_for_loaded(loaded, points, default_layers(loaded.model, points.n_layers))
    assert summary.memory_lines == tuple(plan.summary()["lines"]) and summary.memory_lines
