"""Synthetic-only models read as the seed study reads them: outputs translated by a map fitted on real faces.

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/label_adaptation.py \\
        runs/ablation-converge-full-g592ac7c8fe-n10000-s0 runs/ablation-converge-full-g592ac7c8fe-n10000-s1 \\
        --reference out/real-baseline-s21/checkpoint --out out/bench/label_adaptation.json

The FaceSynthetics study's "synthetic only is comparable to real" is measured after label adaptation: a model
trained on synthetic faces alone places the 68 points in the synthetic labels' convention, and a map fitted on
real TRAINING faces (the model's predictions against the annotators' labels) translates its outputs to the
annotators' convention. No real face is trained on. This is the sweep's `label_adaptation` arm
(`landmix.checkpoint.adapt_outputs`: the per-point offset or the ridge map, whichever scores lower on the
validation faces), applied to any checkpoint: the fixed split of the checkpoint's real shards
(`mixing.real_split`), the map fitted on the first `--faces` training faces (50, 250, -1 = all 869), chosen on
the 97 validation faces, scored on the 241 test faces.

Each argument is a checkpoint folder (`model.pt` + `meta.json`), or a run folder holding `checkpoint_*` folders
(the last one with the final `faces.json` is read: its `model.pt` holds the best epoch's weights).
`--reference`: a real-trained checkpoint scored as it is (no map), the denominator of the "x real" columns.
Prints a markdown table; seconds per checkpoint (the model predicts every real face once, mirrored too).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from landmix import checkpoint, config, metrics, mixing, pool
from landmix.train import FACES_FILE


def checkpoint_folder(path: str | Path) -> Path:
    """A checkpoint folder as given, or a run folder's final checkpoint (the last holding FACES_FILE)."""
    path = Path(path)
    if (path / checkpoint.MODEL_FILE).is_file():
        return path
    finals = sorted(path.glob(f"checkpoint_*/{FACES_FILE}"))
    if not finals:
        raise SystemExit(f"{path}: neither a checkpoint folder ({checkpoint.MODEL_FILE}) nor a run folder with a "
                         f"final checkpoint_*/{FACES_FILE}; give the folder `landmix train` wrote")  # fmt: skip
    return finals[-1].parent


def scores(folder: str | Path, faces=(50, 250, config.ALL_REAL), real_shards: str = "") -> dict:
    """The checkpoint's test NME as it is and after label adaptation on each number of real training faces.

    real_shards: the prepared real faces (default: those the checkpoint trained and validated on). Returns
    {"test_nme", "val_nme", "test_faces", "adapted": {n: {"kind", "fit_faces", "val_nme", "test_nme"}}}."""
    model, meta = checkpoint.load(folder)
    data = config.from_dict(meta["config"]).data
    real_shards = real_shards or data.real_shards
    if not Path(real_shards).exists():
        raise SystemExit(f"{folder}: its real shards {real_shards} are gone; give --real-shards (the same faces, "
                         "prepared at the checkpoint's crop size)")  # fmt: skip
    real = pool.read_shards(real_shards, model.cfg)
    images, gt = real.model_inputs(model.cfg.image_size)
    pred = checkpoint.predict(model, images)
    split = mixing.real_split(real.ids, data.split_seed, data.test_fraction, data.val_fraction)
    pos = {i: k for k, i in enumerate(real.ids)}

    def nme(ids: list[str]) -> float:
        idx = [pos[i] for i in ids]
        return float(metrics.nme(pred[idx], gt[idx]).mean())

    out = {
        "test_nme": nme(split.test),
        "val_nme": nme(split.val),
        "test_faces": len(split.test),
        "adapted": {},
    }
    for n in faces:
        fit = checkpoint.adapt_outputs(pred, gt, real.ids, n, data)
        out["adapted"][str(n)] = {"kind": fit["kind"], "fit_faces": len(fit["faces"]["train"]),
                                  "val_nme": float(fit["val_errors"].mean()),
                                  "test_nme": float(fit["test_errors"].mean())}  # fmt: skip
    return out


def table(rows: dict, reference: float | None) -> str:
    """Markdown: one row per checkpoint, NME % on the test faces (and x the reference where one is given)."""
    faces = next(iter(rows.values()))["adapted"]
    ratio = (lambda v: f" ({v / reference:.2f} x)") if reference else (lambda v: "")  # noqa: E731
    head = ["checkpoint", "as trained"] + [f"adapted on {faces[n]['fit_faces']} real faces" for n in faces]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [f"{100 * r['test_nme']:.2f} %{ratio(r['test_nme'])}"]
        cells += [
            f"{100 * a['test_nme']:.2f} %{ratio(a['test_nme'])}, {a['kind']}" for a in r["adapted"].values()
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    if reference:
        out.append(
            f"\nNME on the {r['test_faces']} held-out real test faces; x: over the reference's "
            f"{100 * reference:.2f} %."
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoint folders, or run folders holding checkpoint_*")
    p.add_argument(
        "--faces",
        type=int,
        nargs="+",
        default=[50, 250, config.ALL_REAL],
        help=f"real training faces the map is fitted on ({config.ALL_REAL} = all)",
    )
    p.add_argument("--reference", default="", help="a real-trained checkpoint: the 'x real' denominator")
    p.add_argument("--real-shards", default="", help="prepared real faces (default: the checkpoint's own)")
    p.add_argument("--out", type=Path, default=Path("out/bench/label_adaptation.json"))
    args = p.parse_args()
    rows = {}
    for path in args.checkpoints:
        folder = checkpoint_folder(path)
        name = Path(path).name if folder != Path(path) else f"{folder.parent.name}/{folder.name}"
        rows[name] = scores(folder, args.faces, args.real_shards) | {"checkpoint": str(folder)}
        print(json.dumps({name: rows[name]["adapted"]}), flush=True)
    reference = None
    if args.reference:
        reference = scores(checkpoint_folder(args.reference), (), args.real_shards)["test_nme"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"reference": {"checkpoint": args.reference, "test_nme": reference},
                                    "faces": args.faces, "rows": rows}, indent=1))  # fmt: skip
    print(table(rows, reference))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
