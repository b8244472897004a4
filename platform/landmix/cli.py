"""`landmix COMMAND ...`: the console script. Parses flags and calls the library.

Each command lives in the module that owns its noun and exposes two functions:
`add_arguments(parser)` and `run(args) -> int` (the exit code). Only the chosen command's
module is imported, so `landmix ingest` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("landmix.manifest", "validate a FaceSynthetics or 300-W folder into a Parquet manifest"),
    "generate": ("landmix.generate.job", "render procedural synthetic faces in the FaceSynthetics layout"),
    "inspect": ("landmix.inspect", "draw contact sheets and label-spread figures for a manifest"),
    "prepare": ("landmix.prepare", "crop, translate and shard manifests into training-ready Parquet"),
    "fit-translator": ("landmix.translate", "fit the real-face label translation on a synthetic-trained model"),
    "train": ("landmix.train", "train a landmark detector with Ray Train from a preset"),
    "eval": ("landmix.evaluate", "evaluate a checkpoint on a 300-W or FaceSynthetics folder"),
    "predict": ("landmix.predict", "find the faces in photos and write their 68 landmarks (.pts, pictures)"),
    "mlflow-server": ("landmix.mlflow_server", "run the tracking server (SQLite + local artifacts by default)"),
}


def _usage() -> str:
    lines = ["usage: landmix COMMAND [options]   (landmix COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"landmix: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"landmix {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
