"""A fork server for `nse` runs: it imports the engine once, then forks one child per request, so
a test can start (and kill) many real runs without paying for the imports each time.

    python edit_zygote.py

Each request is one JSON line on stdin: {"argv": [...], "out": PATH, "err": PATH, "kill_after":
seconds or null, "file_size_limit": bytes or null}. The child runs `nse ARGV` with its output in
the two files (and, with a file size limit, RLIMIT_FSIZE: a write past it fails with EFBIG, as on
a full disk). The server kills the child after `kill_after` seconds if it still runs (it has not
reaped it yet, so the pid cannot belong to anyone else) and answers with one JSON line:
{"status": exit status or -signal, "killed": bool, "seconds": float}.
"""

import json
import os
import signal
import sys
import time
import traceback

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import nse_engine.cli  # noqa: E402
import nse_engine.model.loading  # noqa: E402,F401 - torch and transformers, imported before forking
import nse_engine.workspace  # noqa: E402,F401


def child(request: dict) -> None:
    import resource

    import torch

    torch.set_num_threads(1)
    out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    limit = request.get("file_size_limit")
    if limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    status = 1
    try:
        status = nse_engine.cli.main(request["argv"])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # noqa: BLE001 - the test reads the traceback from the err file
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            child(request)
        killed = False
        deadline = None if request.get("kill_after") is None else started + request["kill_after"]
        while True:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if deadline is not None and time.monotonic() >= deadline and not killed:
                os.kill(pid, signal.SIGKILL)
                killed = True
            time.sleep(0.002)
        status = os.waitstatus_to_exitcode(wait_status)
        print(json.dumps({"status": status, "killed": killed, "seconds": time.monotonic() - started}), flush=True)


if __name__ == "__main__":
    print("READY", flush=True)
    serve()
