"""Measured peak memory (RSS, CPU) of loading a built-in model and one 10-fact round, against the
memory plan's estimate (nse_engine/editing/memory_estimate.py); the target is within 25 %.

Each model runs in its own process (so one model's peak does not hide the other's), after its
conversion in another one. A sampler attributes the resident set to the phase the engine
reports, and the process's peak comes from getrusage. The statistics use few tokens: their
memory does not depend on how many (they are streamed one batch at a time), only their time.

    python -m benchmarks.memory_plan_check [--models default,gemma3-270m] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "tests" / "data" / "facts_dev_head.jsonl"
TARGET = 0.25
GIB = 2**30


def measure(model_key: str, stats_tokens: int) -> dict[str, object]:
    """In this process: load, prepare and apply one 10-fact round, recording RSS by phase."""
    import psutil
    import torch

    from nse_engine.bench import read_cases
    from nse_engine.editing.hparams import NseHyperParams, default_layers
    from nse_engine.editing.session import EditingSession
    from nse_engine.model.architecture import find_edit_points
    from nse_engine.model.loading import load_model
    from nse_engine.editing.memory_estimate import EditingLoad
    from nse_engine.editing.memory_plan import plan_memory
    from nse_engine.model.devices import CPU, Device
    from nse_engine.model.shape import shape_of
    from nse_engine.progress import JobControl

    process = psutil.Process()
    phase = ["start"]
    peaks: dict[str, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = process.memory_info().rss
            peaks[phase[0]] = max(peaks.get(phase[0], 0), rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    control = JobControl(lambda p: phase.__setitem__(0, p.phase))
    started = time.perf_counter()
    loaded = load_model(model_key, device="cpu", dtype="float32", control=control)
    points = find_edit_points(loaded.model)
    layers = default_layers(loaded.model, points.n_layers)
    # Memory does not grow with the number of Adam steps or editing passes (each step and pass
    # frees the last one's tensors), so few of each keep the run short. The plan assumes every
    # neuron is solved for; 0.8 of the key mass selects fewer (with all of them, Gemma's neurons
    # that never fire on 8k tokens make the system singular), so the solve is measured smaller.
    hp = NseHyperParams.flat(
        layers=layers, v_lr=0.5, v_num_grad_steps=5, alpha=0.0,
        upper_bound=1e12, mom2_update_weight=1e4, neuron_threshold=0.8, max_iterations=1,
        context_prefixes=5, stats_tokens=stats_tokens,
    )
    session = EditingSession(loaded, hp, points)
    result = session.apply_round(read_cases(FACTS, 10), control)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    plan = plan_memory(shape_of(loaded.model, points), torch.float32,
                       (Device(CPU, int(psutil.virtual_memory().total)),), EditingLoad(layers, batch_size=10))
    estimate = plan.peak(CPU)
    return {
        "model": loaded.name,
        "layers": list(layers),
        "applied": len(result.applied),
        "seconds": round(seconds, 1),
        "measured_peak_gib": round(peak / GIB, 3),
        "estimated_peak_gib": round(estimate / GIB, 3),
        "estimate_over_measured": round(estimate / peak, 3),
        "within_target": abs(estimate / peak - 1) <= TARGET,
        "measured_rss_by_phase_gib": {k: round(v / GIB, 3) for k, v in peaks.items()},
        "estimated_by_phase_gib": {k: round(v / GIB, 3) for k, v in plan.by_phase(CPU).items()},
        "estimate_items": [{"phase": i.phase, "what": i.what, "gib": round(i.bytes / GIB, 3)} for i in plan.items],
    }


def run_child(args: list[str], data_dir: str, cache_dir: str) -> str:
    env_script = (
        "import os, sys; os.environ['NSE_DATA_DIR'] = sys.argv[1]; os.environ['NSE_CACHE_DIR'] = sys.argv[2]; "
        "sys.argv = [sys.argv[0], *sys.argv[3:]]; sys.path.insert(0, os.getcwd()); "
        "from benchmarks.memory_plan_check import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", env_script, data_dir, cache_dir, *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    from nse_engine.paths import data_dir
    from nse_engine.provenance import write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,gemma3-270m")
    parser.add_argument("--stats-tokens", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory_plan_check.json")
    parser.add_argument("--child", choices=("convert", "measure"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "convert":
        from nse_engine.model.default_model import ensure_builtin_model

        ensure_builtin_model(args.models)
        return
    if args.child == "measure":
        print(json.dumps(measure(args.models, args.stats_tokens)))
        return
    results = []
    with tempfile.TemporaryDirectory() as cache:  # statistics computed afresh: their memory is measured
        for key in args.models.split(","):
            run_child(["--models", key, "--child", "convert"], str(data_dir()), cache)
            out = run_child(["--models", key, "--child", "measure", "--stats-tokens", str(args.stats_tokens)],
                            str(data_dir()), cache)
            result = json.loads(out.strip().splitlines()[-1])
            results.append(result)
            print(f"{result['model']}: measured {result['measured_peak_gib']:.2f} GiB, estimated "
                  f"{result['estimated_peak_gib']:.2f} GiB ({result['estimate_over_measured']:.2f}×, "
                  f"{'within' if result['within_target'] else 'OUTSIDE'} ±{TARGET:.0%}), {result['seconds']} s")
    write_result(args.out, {"target": TARGET, "stats_tokens": args.stats_tokens, "results": results})
    print(f"written: {args.out}")
    if not all(r["within_target"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
