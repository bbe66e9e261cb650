"""The `nse` command: the engine's features from a terminal, with progress bars and plain errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from nse_engine.errors import Cancelled, NseError

BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool that stopped at a closed pipe


def build_parser() -> argparse.ArgumentParser:
    from nse_engine.cli import compare, editing, export, models, stats, store

    parser = argparse.ArgumentParser(prog="nse", description="NSE Studio: sequential knowledge editing of local LLMs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (models, stats, store, editing, export, compare):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return status
    except BrokenPipeError:  # the reader went away (`nse log | head`): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE
    except NseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
