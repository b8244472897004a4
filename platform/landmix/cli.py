"""`landmix COMMAND ...`: the console script. Parses flags and calls the library.

Each command lives in the module that owns its noun and exposes two functions:
`add_arguments(parser)` and `run(args) -> int` (the exit code). Only the chosen command's
module is imported, so `landmix ingest` does not pay for importing torch.

Errors the user can cause end as one line on stderr, `landmix COMMAND: what was wrong; what to do`,
and exit code 2 (as argparse's own usage errors). `main` is the one place that decides which errors
those are (`expected`):
  - FileNotFoundError, NotADirectoryError, IsADirectoryError: a path that is not there or not of its kind.
    Only these exact classes: Ray's RayTaskError subclasses the remote error's class, and its text is a
    whole remote traceback, which is not a one-line message.
  - ValueError raised by a `raise` statement in landmix code: config checks and input checks, whose
    messages name the field and the allowed values. A ValueError from numpy, torch, pyarrow or json
    (a corrupt Parquet file, a malformed meta.json, a string numpy cannot parse) keeps its traceback:
    its text does not say which file or setting it came from, and a one-liner would hide where it arose.
  - quarantine.Rejected: a sample that does not follow its format.
  - pickle.UnpicklingError: torch's weights-only loader refusing a file (one holding Python objects
    besides tensors, or not a torch file at all); landmix never unpickles a checkpoint.
Everything else (RuntimeError, KeyError, ...) is a bug or an environment problem and keeps its traceback.
`landmix COMMAND --traceback ...` or LANDMIX_TRACEBACK=1 shows the traceback of an expected error too.
"""

from __future__ import annotations

import argparse
import importlib
import linecache
import os
import pickle
import sys
from pathlib import Path

from landmix.quarantine import Rejected

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("landmix.manifest", "validate a FaceSynthetics or 300-W folder into a Parquet manifest"),
    "generate": ("landmix.generate.job", "render procedural synthetic faces in the FaceSynthetics layout"),
    "inspect": ("landmix.inspect", "draw contact sheets and label-spread figures for a manifest"),
    "prepare": ("landmix.prepare", "crop, translate and shard manifests into training-ready Parquet"),
    "fit-translator": ("landmix.relabel", "fit the real-face label translation on a synthetic-trained model"),
    "train": ("landmix.train_command", "train a landmark detector with Ray Train from a preset"),
    "eval": ("landmix.evaluate", "evaluate a checkpoint on a 300-W or FaceSynthetics folder"),
    "predict": ("landmix.predict", "find the faces in photos and write their 68 landmarks (.pts, pictures)"),
    "serve": ("landmix.serve", "serve the detector over HTTP (Ray Serve): POST an image, get its landmarks"),
    "export": (
        "landmix.export",
        "write a checkpoint as ONNX with its preprocessing contract, parity-checked",
    ),
    "select": (
        "landmix.select",
        "pick which unlabelled real photos to annotate, with a synthetic-pretrained model",
    ),
    "audit": (
        "landmix.audit_command",
        "find wrong labels in real faces: each judged by a model trained on the other folds",
    ),
    "gap": (
        "landmix.domain_gap",
        "measure the visual gap: a real-vs-synthetic classifier and image statistics",
    ),
    "mlflow-server": (
        "landmix.mlflow_server",
        "run the tracking server (SQLite + local artifacts by default)",
    ),
}

# OSErrors about a path, and what each says when the library raised it with a bare path as its text.
PATH_ERRORS: dict[type, str] = {
    FileNotFoundError: "no such file or folder",
    NotADirectoryError: "not a folder",
    IsADirectoryError: "a folder, where a file was expected",
}
CHECKPOINT_HINT = "pass a folder written by `landmix train` (OUT/checkpoint: it holds model.pt and meta.json)"
TRACEBACK_HINT = "(--traceback or LANDMIX_TRACEBACK=1 for the traceback)"


def _usage() -> str:
    lines = ["usage: landmix COMMAND [options]   (landmix COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def _last_frame(e: BaseException):
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _raised_by_landmix(e: BaseException) -> bool:
    """True where a `raise` statement in landmix code raised e (not numpy or torch beneath a landmix line)."""
    tb = _last_frame(e)
    if tb is None or not tb.tb_frame.f_globals.get("__name__", "").startswith("landmix."):
        return False
    return linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).lstrip().startswith("raise")


def _refused_file(e: BaseException) -> str:
    """The file torch.load refused: its `f` argument, read from the traceback (torch's message omits it)."""
    tb = e.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "load" and frame.f_globals.get("__name__") == "torch.serialization":
            return str(frame.f_locals.get("f"))
        tb = tb.tb_next
    return "a checkpoint file"


def expected(e: BaseException) -> bool:
    """Whether e is an error the user caused and can fix from its message (module docstring)."""
    if type(e) in PATH_ERRORS or isinstance(e, (Rejected, pickle.UnpicklingError)):
        return True
    return isinstance(e, ValueError) and _raised_by_landmix(e)


def message(e: BaseException, args: argparse.Namespace) -> str:
    """What was wrong and, where it helps, what to do: one line, from the exception's own text."""
    if isinstance(e, pickle.UnpicklingError):
        why = str(e).partition("WeightsUnpickler error:")[2].split(". ")[0]
        why = " ".join(why.split()) or "not a torch file"
        return (
            f"{_refused_file(e)} is refused by torch's weights-only loader ({why}): landmix loads "
            f"tensors only, never pickled Python objects; {CHECKPOINT_HINT}"
        )
    text = " ".join(str(e).split())  # one line, whatever the library wrote
    if isinstance(e, OSError) and e.filename is not None:
        text = f"{e.filename}: {PATH_ERRORS.get(type(e), e.strerror)}"
    elif isinstance(e, OSError) and " " not in text:  # a bare path (pyarrow's FileNotFoundError)
        text = f"{text}: {PATH_ERRORS[type(e)]}"
    checkpoint = getattr(args, "checkpoint", None)
    filename = getattr(e, "filename", None)
    if checkpoint and filename and Path(filename).parent == Path(checkpoint):  # model.pt missing from it
        text += f"; {CHECKPOINT_HINT}"
    return text


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
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an input error (also: LANDMIX_TRACEBACK=1)",
    )
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except Exception as e:
        if not expected(e) or args.traceback or os.environ.get("LANDMIX_TRACEBACK", "") not in ("", "0"):
            raise
        print(f"landmix {name}: {message(e, args)} {TRACEBACK_HINT}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
