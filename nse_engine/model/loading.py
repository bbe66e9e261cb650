"""Loading a local causal LM (Hugging Face folder or single .gguf file), offline, with clear errors."""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import nse_engine  # noqa: F401  (sets the offline flags before transformers is imported)
import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from nse_engine.errors import ModelLoadError
from nse_engine.model.builtin_models import BUILTIN_MODELS
from nse_engine.model.default_model import ensure_builtin_model
from nse_engine.model.devices import Device, dtype_name, pick_device, pick_dtype
from nse_engine.model.model_files import check_memory, first_line, load_tokenizer, read_gguf
from nse_engine.model.placement import check_device_map, parse_gpu_list, place_weights
from nse_engine.model.shape import model_shape
from nse_engine.paths import cache_dir
from nse_engine.progress import JobControl, silent

log = logging.getLogger(__name__)

# Model types whose checkpoints are encoders; transformers can bolt an LM head on some of them,
# but they are not autoregressive language models and NSE's target states make no sense there.
ENCODER_ONLY_TYPES = {
    "bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta",
    "xlm-roberta-xl", "camembert", "mpnet", "modernbert", "ernie", "funnel", "layoutlm", "longformer",
    "mobilebert", "squeezebert", "convbert", "canine", "rembert", "roformer", "nystromformer", "ibert",
}
_SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}


@dataclass
class LoadedModel:
    """A model ready for editing, with where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str  # the path the user gave, or a built-in model's key ("default", "gemma3-270m")
    name: str
    device: torch.device
    dtype: torch.dtype

    @property
    def architecture(self) -> str:
        archs = getattr(self.model.config, "architectures", None) or []
        return archs[0] if archs else type(self.model).__name__

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "source": self.source,
            "architecture": self.architecture,
            "model_type": self.model.config.model_type,
            "layers": self.model.config.num_hidden_layers,
            "parameters": self.n_params,
            "dtype": dtype_name(self.dtype),
            "device": str(self.device),
        }


def load_model(
    source: str | Path,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    control: JobControl | None = None,
    device_map: str | dict[str, object] | None = None,
) -> LoadedModel:
    """Load `source` (a model folder, a .gguf file, or a built-in model's key) for editing.

    `device_map` spreads a model folder over several devices with accelerate: "auto",
    "balanced" (every GPU) or "balanced:0,1" (those GPUs), or an explicit module -> device map.
    Every problem a user can cause raises ModelLoadError / InsufficientMemoryError with a message
    that says what is wrong and what to do; nothing here touches the network.
    """
    control = control or silent()
    source_str = str(source)
    if source_str in BUILTIN_MODELS:
        path = ensure_builtin_model(source_str, control)
    else:
        path = Path(source).expanduser()
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(torch_device, dtype)

    control.report("loading model", 0, 3, "reading config")
    if not path.exists():
        raise ModelLoadError(f"No model at {path}: the path does not exist.")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(
                f"{path} is a file but not a .gguf model. Choose a model folder (with config.json) "
                "or a single .gguf file."
            )
        if device_map is not None:
            raise ModelLoadError(
                f"{path.name}: a device map needs a model folder; a .gguf file loads on one device."
            )
        return _load_gguf(path, source_str, torch_device, torch_dtype, control)

    config = read_config(path, trust_remote_code)
    weight_bytes = check_weight_files(path, torch_dtype)
    if device_map is None:
        check_memory(weight_bytes, torch_device, torch_dtype, path.name)
    else:
        device_map = resolve_device_map(device_map, config, torch_dtype)

    control.report("loading model", 1, 3, "loading tokenizer")
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    control.report("loading model", 2, 3, "loading weights")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path,
            config=config,
            dtype=torch_dtype,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            # transformers 5 swaps layers for Hub kernels by default: code fetched at load time,
            # and modules the editing hooks would no longer see
            use_kernels=False,
            **({} if device_map is None else {"device_map": device_map, "offload_folder": offload_folder(path)}),
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"The weights in {path} cannot be loaded: {first_line(exc)}") from exc
    if device_map is not None:
        torch_device = model.get_input_embeddings().weight.device
        if torch_device.type == "meta":
            torch_device = pick_device(device)
    loaded = _finish(model, tokenizer, source_str, path.name, torch_device, torch_dtype, placed=device_map is not None)
    control.report("loading model", 3, 3, "ready")
    return loaded


def read_config(path: Path, trust_remote_code: bool = False) -> PretrainedConfig:
    """Read and vet a folder's config: it must describe a decoder-only causal LM."""
    config_file = path / "config.json"
    if not config_file.exists():
        ggufs = sorted(path.glob("*.gguf"))
        hint = f" It holds {ggufs[0].name}; choose that .gguf file instead." if ggufs else ""
        raise ModelLoadError(f"{path} has no config.json, so it is not a Hugging Face model folder.{hint}")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config_file} is not valid JSON: {exc}") from exc
    model_type = raw.get("model_type", "")
    if model_type in ENCODER_ONLY_TYPES or raw.get("is_encoder_decoder"):
        kind = "an encoder-decoder" if raw.get("is_encoder_decoder") else "an encoder-only"
        raise ModelLoadError(
            f"{path.name} is {kind} model ({model_type or 'unknown type'}). NSE edits decoder-only "
            "causal language models such as GPT-2, GPT-J, Pythia, Llama, Mistral, Qwen2 or SmolLM."
        )
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        needs_code = "trust_remote_code" in str(exc)
        hint = (
            " This model ships its own Python code; load it only if you trust its author, with "
            "--trust-remote-code." if needs_code else ""
        )
        raise ModelLoadError(f"The config in {path} cannot be read: {first_line(exc)}.{hint}") from exc
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not trust_remote_code:
        raise ModelLoadError(
            f"{path.name} ({config.model_type}) is not a causal language model that transformers "
            "knows; NSE needs a decoder-only causal LM."
        )
    return config


def check_weight_files(path: Path, dtype: torch.dtype) -> int:
    """Check that every weight file is present and complete; return the loaded size in bytes."""
    index_files = sorted(path.glob("*.index.json"))
    shards: list[Path] = []
    for index_file in index_files:
        try:
            weight_map = json.loads(index_file.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"The weight index {index_file.name} is damaged: {exc}") from exc
        for shard_name in sorted(set(weight_map.values())):
            shard = path / shard_name
            if not shard.exists():
                raise ModelLoadError(
                    f"{path.name} is missing the weight file {shard_name} listed in {index_file.name}."
                )
            shards.append(shard)
    if not shards:
        shards = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not shards:
        raise ModelLoadError(
            f"{path} has a config but no weights (no *.safetensors or pytorch_model.bin files)."
        )
    itemsize = dtype.itemsize
    total = 0
    for shard in shards:
        if shard.suffix == ".safetensors":
            total += _safetensors_elements(shard) * itemsize
        else:
            total += shard.stat().st_size * itemsize // 2  # .bin checkpoints are mostly fp16/fp32
    return total


def _safetensors_elements(file: Path) -> int:
    """Parse a safetensors header; raise if the file is shorter than the header says."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size:
                raise ValueError("header longer than file")
            header = json.loads(fh.read(header_len))
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"The weight file {file.name} is damaged or not a safetensors file.") from exc
    end = 0
    elements = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        end = max(end, info["data_offsets"][1])
        n = 1
        for dim in info["shape"]:
            n *= dim
        elements += n
    if 8 + header_len + end > size:
        raise ModelLoadError(
            f"The weight file {file.name} is truncated ({size:,} bytes, expected "
            f"{8 + header_len + end:,}). Copy or download it again."
        )
    return elements


def offload_folder(path: Path) -> Path:
    """Where accelerate keeps the blocks a device map offloads to disk (recomputable: a cache)."""
    return cache_dir() / "offload" / path.name


def resolve_device_map(
    device_map: str | dict[str, object], config: PretrainedConfig, dtype: torch.dtype
) -> str | dict[str, object]:
    """What from_pretrained gets: "auto" as is, "balanced[:gpus]" as the memory plan's own
    placement over those GPUs, an explicit map as given."""
    if isinstance(device_map, dict):
        return device_map
    check_device_map(device_map)
    if device_map == "auto":
        return device_map
    available = torch.cuda.device_count()
    gpus = parse_gpu_list(device_map)
    gpus = list(range(available)) if gpus is None else gpus
    missing = [g for g in gpus if g >= available]
    if not gpus or missing:
        raise ModelLoadError(
            f"--device-map {device_map}: this machine has {available} CUDA GPU(s)"
            + (f"; there is no GPU {', '.join(map(str, missing))}." if missing else ".")
        )
    devices = [Device(f"cuda:{g}", int(torch.cuda.mem_get_info(g)[0])) for g in gpus]
    return dict(place_weights(model_shape(config), tuple(devices)))


def _load_gguf(
    file: Path, source: str, device: torch.device, dtype: torch.dtype, control: JobControl
) -> LoadedModel:
    model, tokenizer = read_gguf(file, device, dtype, control)
    loaded = _finish(model, tokenizer, source, file.stem, device, dtype)
    control.report("loading model", 3, 3, "ready")
    return loaded


def _finish(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    source: str,
    name: str,
    device: torch.device,
    dtype: torch.dtype,
    placed: bool = False,
) -> LoadedModel:
    """Eval mode, no gradients, on `device` (a model placed by a device map stays where it is)."""
    if not placed:
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    log.info("loaded %s (%s) on %s in %s", name, type(model).__name__, device, dtype_name(dtype))
    return LoadedModel(model, tokenizer, source, name, device, dtype)
