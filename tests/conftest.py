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


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test writes its data and caches to temporary folders, never the user's."""
    root = tmp_path_factory.mktemp("nse-home")
    monkeypatch.setenv("NSE_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("NSE_CACHE_DIR", str(root / "cache"))


@pytest.fixture(scope="session")
def default_model_path(tmp_path_factory):
    """The built-in default model, converted once per test session into a temporary folder."""
    from nse_engine.model.default_model import ensure_builtin_model

    previous = os.environ.get("NSE_DATA_DIR")
    os.environ["NSE_DATA_DIR"] = str(tmp_path_factory.mktemp("default-model"))
    try:
        return ensure_builtin_model("default")
    finally:
        if previous is None:
            del os.environ["NSE_DATA_DIR"]
        else:
            os.environ["NSE_DATA_DIR"] = previous
