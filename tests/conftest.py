import os
import sys
from pathlib import Path

# Qt binding choice must be settled before qasync/pyqtgraph are imported anywhere.
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models gain nothing from intra-op threads; on a shared 2-core machine extra threads
    only spin waiting on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _models_on_test_device():
    """With NSE_TEST_DEVICE=cuda (scripts/gpu-check.sh) every model the suite loads or builds
    for the CPU runs on that device instead: LoadedModel moves it there."""
    from tiny import TEST_DEVICE

    if TEST_DEVICE.type == "cpu":
        yield
        return
    from nse_engine.model.loading import LoadedModel

    built_for_cpu = LoadedModel.__init__

    def on_test_device(self, model, tokenizer, source, name, device, dtype):
        if getattr(model, "hf_device_map", None):  # placed by a device map: stays where accelerate put it
            built_for_cpu(self, model, tokenizer, source, name, device, dtype)
        else:
            built_for_cpu(self, model.to(TEST_DEVICE), tokenizer, source, name, TEST_DEVICE, dtype)

    LoadedModel.__init__ = on_test_device
    yield
    LoadedModel.__init__ = built_for_cpu


@pytest.fixture(scope="session")
def _shared_root(tmp_path_factory) -> Path:
    """A folder all workers of one run share (scripts/test.sh runs pytest-xdist workers), so what
    is measured once per run (the built-in model's conversion, its statistics) is measured once."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def _shared_cache(_shared_root) -> Path:
    """One statistics and derived-settings cache for the whole run, for the tests that use it: the
    integration tests on the real models, and the app and reliability tests on the tiny model on disk.
    Its entries are keyed by the model's weights and the text sample, so each model is measured once
    (two workers may measure the same entry at the same time; both write it atomically)."""
    path = _shared_root / "nse-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _isolated_dirs(request, tmp_path_factory, monkeypatch):
    """Every test writes its data and caches to temporary folders, never the user's; the integration
    tests share one cache, so that a real model's statistics are computed once per session, not per test."""
    root = tmp_path_factory.mktemp("nse-home")
    monkeypatch.setenv("NSE_DATA_DIR", str(root / "data"))
    shared = request.node.get_closest_marker("integration") is not None
    monkeypatch.setenv("NSE_CACHE_DIR", str(request.getfixturevalue("_shared_cache") if shared else root / "cache"))


@pytest.fixture
def shared_cache(_isolated_dirs, _shared_cache, monkeypatch) -> Path:
    """This test's statistics and derived settings go to the session's one cache (`_shared_cache`)."""
    monkeypatch.setenv("NSE_CACHE_DIR", str(_shared_cache))
    return _shared_cache


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny GPT-2 saved as a model folder, as a user would choose it."""
    from tiny import save_model

    return save_model("gpt2", tmp_path_factory.mktemp("models") / "tiny-gpt2")


@pytest.fixture(scope="session")
def default_model_path(_shared_root):
    """The built-in default model, converted once per run into a temporary folder (one worker
    converts while the others wait for it)."""
    from filelock import FileLock

    from nse_engine.model.default_model import ensure_builtin_model

    previous = os.environ.get("NSE_DATA_DIR")
    os.environ["NSE_DATA_DIR"] = str(_shared_root / "default-model")
    try:
        with FileLock(_shared_root / "default-model.lock"):
            return ensure_builtin_model("default")
    finally:
        if previous is None:
            del os.environ["NSE_DATA_DIR"]
        else:
            os.environ["NSE_DATA_DIR"] = previous
