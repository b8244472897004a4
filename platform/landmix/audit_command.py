"""`landmix audit`: every labelled face of a folder judged by a model that never saw it.

    landmix audit --data ../shared/data/300w --out out/audit            # resumable: run it again to go on
    landmix audit --data faces.parquet --out out/audit --fix suggest   # a manifest; corrected .pts for suspects

1. The faces (a 300-W-layout folder, or a manifest of `landmix ingest`) are prepared once into shards under
   OUT/work, and their source photos dealt into `--folds` folds (several faces of one photo stay together).
2. Per fold, a fine-tune of the real-baseline recipe on the other folds' faces (`DataConfig.withheld` = the
   fold; the run's test faces are withheld from every fold's training too, so they are judged only by models
   trained on training faces), started from the platform's synthetic pretraining with generator-fitted labels
   (`pretraining.Recipe(relabel_rounds=0)`: no real-fitted label map, which would have seen the faces being
   judged) or from `--init`. Each fold's model is a Ray Train run under a fixed name (an interrupted one
   resumes) and its predictions are written to OUT/folds/fold-<k>.json when done (a finished fold is skipped).
3. The fold's faces predicted by its model: the face found by dlib's detector where one overlaps the label
   (else the crop around the label, said per face as `crop_from`), refined by the model's passes, then seen
   over shifted, scaled and mirrored crops (`candidates.views`): the mean is the model's points and the spread
   per point the model's doubt.
4. `landmix.audit.judge` scores every face. Writes OUT/audit.json (every face, most suspicious first: image,
   suspicion, kind, the points judged wrong, each kind's evidence, fold, crop_from), OUT/suspects.png (the top
   suspects: label red, model green), OUT/ambiguity.png (each point's spread on the mean shape) and, with `--fix
   suggest`, OUT/suggested/<face id>.pts for each suspect (the label with the judged points replaced by the
   model's, for a person to accept). Nothing in the data folder is written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from landmix import audit, presets, settings
from landmix import config as C
from landmix.schemes import IBUG68, interocular
from landmix.sources.split import photo_of, rank_key, real_split

DEFAULT_FOLDS = 5
FOLD_EPOCHS = 25  # of fine-tuning per fold: 3-3.5 min on 2 cores; 5 folds of 1,207 faces in 18 min
SHEET_FACES = 40  # the suspects drawn on the contact sheet


@dataclass(frozen=True)
class Face:
    id: str  # as ingest names it: the image path under the root, without suffix
    image: Path
    label: np.ndarray  # (68, 2) 0-based image pixels


def read_faces(data: str | Path) -> list[Face]:
    """The labelled faces of a 300-W-layout folder or of a manifest (.parquet) written by `landmix ingest`."""
    from landmix.sources.faces import face_id, list_faces

    data = Path(data)
    if data.suffix == ".parquet":
        import pyarrow as pa

        from landmix.manifest import landmarks_array, read_manifest

        try:
            table = read_manifest(data)
        except pa.ArrowInvalid as e:
            raise ValueError(f"--data {data}: not a Parquet manifest of `landmix ingest` ({e})") from None
        pts = landmarks_array(table["landmarks"])
        return [
            Face(i, Path(r, p), pts[k].astype(np.float64))
            for k, (i, r, p) in enumerate(
                zip(table["id"].to_pylist(), table["root"].to_pylist(), table["image_path"].to_pylist())
            )
        ]
    if not data.is_dir():
        raise FileNotFoundError(
            f"--data {data}: not a folder of 300-W faces (.pts beside images) or a manifest"
        )
    return [Face(face_id(rel), data / rel, pts.astype(np.float64)) for rel, pts in list_faces(data, "300w")]


def folds_of(ids: list[str], k: int, seed: int = 0) -> dict[str, int]:
    """Each face's fold: whole source photos dealt in one seeded hash order, round robin."""
    if k < 2:
        raise ValueError(
            f"--folds {k}: give 2 or more (each face is judged by a model trained on the others)"
        )
    photos = sorted({photo_of(i) for i in ids}, key=lambda p: rank_key(seed, "audit-fold", p))
    fold = {p: n % k for n, p in enumerate(photos)}
    return {i: fold[photo_of(i)] for i in ids}


def fold_spec(
    base: C.RunSpec, shards: str, withheld: list[str], init: str, name: str, storage: str
) -> C.RunSpec:
    """The fine-tune of one fold: base's recipe on the prepared faces minus the withheld ones."""
    return replace(
        base,
        data=replace(base.data, real_shards=shards, withheld=tuple(sorted(withheld)), strategy="real_only"),
        train=replace(base.train, init_checkpoint=init, name=name, storage_path=storage),
    )


def predict_fold(checkpoint_folder: str, faces: list[Face]) -> dict[str, dict]:
    """The model's points and per-point doubt for each face, and the detector's boxes on its photo."""
    from landmix import candidates, checkpoint, crops, detect, photos, predict

    model, _ = checkpoint.load(checkpoint_folder)
    calibration = detect.BoxCalibration.load()
    scale = model.cfg.crop_scale
    out = {}
    for face in faces:
        try:
            image = photos.read_photo(face.image)
        except (ValueError, OSError) as e:  # listed in the output with its reason, never dropped
            out[face.id] = {"error": str(e)}
            continue
        boxes = detect.detect_faces(image)
        best, _ = detect.match(boxes, face.label, audit.NO_FACE_IOU)
        if best >= 0:
            first, crop_from = calibration.model_box(boxes[best], scale), "detector"
        else:
            first, crop_from = crops.box_for(face.label, scale), "label"
        pts = predict.landmarks(model, image, [first])[0]
        seen, _ = candidates.views(model, image, pts)
        mean = seen.mean(0)
        iod = max(float(interocular(mean, IBUG68)), 1e-6)
        doubt = np.sqrt(((seen - mean) ** 2).sum(-1).mean(0)) / iod
        out[face.id] = {
            "points": mean.round(2).tolist(),
            "doubt": doubt.round(5).tolist(),
            "crop_from": crop_from,
            "detected": np.asarray(boxes).round(1).tolist(),
        }
    return out


def default_init(base: C.RunSpec) -> str:
    """The synthetic pretraining with generator-fitted labels (no real-fitted round), built once and cached;
    at the smoke preset's size (64 generated faces) where the audit's recipe is smoke-sized."""
    from landmix import pretraining

    spec = presets.synthetic()
    if base.model.image_size == spec.model.image_size:
        recipe = pretraining.Recipe(spec=spec, relabel_rounds=0)
    else:
        recipe = pretraining.Recipe(spec=presets.smoke_sized(spec), relabel_rounds=0, n_generated=64)
    return pretraining.build(recipe)["checkpoint"]


def run_audit(
    data: str | Path,
    out: str | Path,
    folds: int = DEFAULT_FOLDS,
    init: str = "",
    base: C.RunSpec | None = None,
    fix: str = "",
    seed: int = 0,
) -> dict:
    """The audit of `data` into `out` (see the module docstring); resumes where an earlier call stopped."""
    from landmix import inputs, trainer

    settings.require_ray("run_audit")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    faces = read_faces(data)
    by_id = {f.id: f for f in faces}
    if len(by_id) != len(faces):
        raise ValueError(f"--data {data}: face ids repeat; give each face once")
    base = base or audit_preset()
    fold = folds_of(list(by_id), folds, seed)
    size = C.shard_size(base.model)
    if Path(data).suffix == ".parquet":
        shards = inputs.build_from_manifest(Path(data), out / "work", size)
    else:
        shards, _, _ = inputs.build_real(out / "work", real_root=Path(data), crop_size=size)
    never_train = set(real_split(list(by_id), C.DataConfig()).test)  # the run's test faces
    init = init or default_init(base)
    predictions: dict[str, dict] = {}
    fold_seconds = 0.0  # every fold's training and prediction, whichever call did it
    for k in range(folds):
        done = out / "folds" / f"fold-{k}.json"
        if done.exists():
            kept = json.loads(done.read_text())
            predictions |= kept["faces"]
            fold_seconds += kept["seconds"]
            continue
        judged = [i for i in by_id if fold[i] == k]
        spec = fold_spec(
            base,
            str(shards),
            sorted(set(judged) | never_train),
            init,
            f"audit-{out.name}-fold{k}",
            str(out / "work" / "runs"),
        )
        t = time.monotonic()
        result = trainer.fit(spec, str(out / "work" / f"fold-{k}"))
        if result.error is not None:
            raise RuntimeError(
                f"audit fold {k} failed: {result.error}; run the same command again to resume it"
            )
        got = predict_fold(str(out / "work" / f"fold-{k}" / "checkpoint"), [by_id[i] for i in judged])
        done.parent.mkdir(exist_ok=True)
        done.write_text(
            json.dumps(
                {
                    "fold": k,
                    "seconds": round(time.monotonic() - t, 1),
                    "val_nme": result.metrics.get("val_nme"),
                    "faces": got,
                }
            )
        )
        print(
            f"audit fold {k + 1}/{folds}: {len(judged)} faces judged in {time.monotonic() - t:.0f} s",
            flush=True,
        )
        predictions |= got
        fold_seconds += time.monotonic() - t
    report = write_report(faces, fold, predictions, never_train, out, fix)
    report["seconds"] = round(time.monotonic() - t0, 1)
    report["fold_seconds"] = round(fold_seconds, 1)
    (out / "audit.json").write_text(json.dumps(report, indent=1))
    return report


def audit_preset() -> C.RunSpec:
    """The fold fine-tune: the real-baseline recipe for FOLD_EPOCHS epochs (a budget in epochs, so a busy or
    faster machine changes how long a fold takes, not what it learns); 5 % of the faces a fold trains on are
    its own test part (the split wants one), the rest train or validate."""
    spec = presets.real_baseline()
    return replace(
        spec,
        data=replace(spec.data, test_fraction=0.05),
        train=replace(spec.train, epochs=FOLD_EPOCHS, time_budget_s=0),
    )


def write_report(faces, fold, predictions, never_train, out: Path, fix: str) -> dict:
    """Judge every face and write what the module docstring lists; every face is in the report."""
    ok = [f for f in faces if "points" in predictions.get(f.id, {})]
    ok_ids = {f.id for f in ok}
    labels = np.stack([f.label for f in ok]) if ok else np.zeros((0, 68, 2))
    preds = np.array([predictions[f.id]["points"] for f in ok], np.float64).reshape(labels.shape)
    doubts = np.array([predictions[f.id]["doubt"] for f in ok], np.float64).reshape(labels.shape[:2])
    detected = [np.array(predictions[f.id]["detected"], np.float64).reshape(-1, 4) for f in ok]
    verdicts, ambiguity = audit.judge(labels, preds, doubts, detected=detected) if ok else ([], np.zeros(68))
    rows = []
    for f, v in zip(ok, verdicts):
        rows.append(
            {
                "id": f.id,
                "image": str(f.image),
                "suspicion": round(v.suspicion, 3),
                "suspect": v.suspicion > audit.SUSPECT,
                "kind": v.kind,
                "points": v.points,
                "evidence": {k: round(e, 3) for k, e in v.evidence.items()},
                "fold": fold[f.id],
                "test_face": f.id in never_train,
                "crop_from": predictions[f.id]["crop_from"],
            }
        )
    order = np.argsort([-r["suspicion"] for r in rows], kind="stable")
    rows = [rows[i] for i in order]
    unread = [
        {
            "id": f.id,
            "image": str(f.image),
            "suspicion": None,
            "error": predictions.get(f.id, {}).get("error", "not predicted"),
        }
        for f in faces
        if f.id not in ok_ids
    ]
    suggested = {}
    if fix == "suggest":
        from landmix.sources import w300

        folder = out / "suggested"
        for f, v in zip(ok, verdicts):
            if v.suspicion > audit.SUSPECT:
                path = folder / f"{f.id}.pts"
                path.parent.mkdir(parents=True, exist_ok=True)
                w300.write_pts(path, v.suggestion)
                suggested[f.id] = str(path)
    files = {
        "sheet": str(
            contact_sheet(rows[:SHEET_FACES], {f.id: f for f in ok}, predictions, out / "suspects.png")
        )
    }
    files["ambiguity"] = str(plot_ambiguity(labels, ambiguity, out / "ambiguity.png"))
    return {
        "threshold": audit.SUSPECT,
        "faces": rows + unread,
        "suspects": int(sum(r["suspect"] for r in rows)),
        "kinds": {k: int(sum(r["suspect"] and r["kind"] == k for r in rows)) for k in audit.KINDS},
        "ambiguity": np.round(ambiguity, 5).tolist(),
        "unreadable": len(unread),
        "suggested": suggested,
        "files": files,
    }


def contact_sheet(
    rows: list[dict], faces: dict, predictions: dict, path: Path, size: int = 160, cols: int = 8
) -> Path:
    """The top suspects, each cropped around its label and the model's points: label red, model green, the
    points judged wrong ringed; captioned rank, kind and suspicion."""
    import cv2

    from landmix import crops, photos

    tiles = []
    for n, r in enumerate(rows):
        f = faces[r["id"]]
        model = np.array(predictions[r["id"]]["points"], np.float32)
        both = np.concatenate([f.label, model]).astype(np.float32)
        try:
            image = photos.read_photo(f.image)
        except (ValueError, OSError):
            continue
        tile, p = crops.crop_image(image, both, crops.box_for(both, 1.4), size)
        tile = np.ascontiguousarray(tile[:, :, ::-1])  # RGB -> BGR for cv2
        lab, mod = p[: len(f.label)], p[len(f.label) :]
        for (x, y), (u, v) in zip(lab, mod):
            cv2.line(tile, (int(x), int(y)), (int(u), int(v)), (200, 200, 200), 1, cv2.LINE_AA)
        for x, y in mod:
            cv2.circle(tile, (int(round(x)), int(round(y))), 1, (60, 220, 60), -1, cv2.LINE_AA)
        for j, (x, y) in enumerate(lab):
            cv2.circle(tile, (int(round(x)), int(round(y))), 1, (40, 40, 230), -1, cv2.LINE_AA)
            if j in r["points"] and len(r["points"]) <= audit.MAX_POINTS:
                cv2.circle(tile, (int(round(x)), int(round(y))), 5, (40, 200, 255), 1, cv2.LINE_AA)
        caption = f"{n + 1} {r['kind'] or '-'} {r['suspicion']:.1f}"
        cv2.rectangle(tile, (0, 0), (size, 14), (0, 0, 0), -1)
        cv2.putText(tile, caption, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        tiles = [np.zeros((size, size, 3), np.uint8)]
    cols = min(cols, len(tiles))
    while len(tiles) % cols:
        tiles.append(np.zeros((size, size, 3), np.uint8))
    grid = np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])
    cv2.imwrite(str(path), grid)
    return path


def plot_ambiguity(labels: np.ndarray, ambiguity: np.ndarray, path: Path) -> Path:
    """Each point's ambiguity (its robust spread, inter-ocular distances) as a circle on the mean shape."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from landmix.translate.procrustes import mean_shape

    fig, ax = plt.subplots(figsize=(5, 5))
    if len(labels):
        mean = mean_shape(labels, IBUG68)
        iod = float(interocular(mean, IBUG68))
        for (x, y), a in zip(mean, ambiguity):
            ax.add_patch(plt.Circle((x, y), a * iod, color="tab:orange", alpha=0.35))
        ax.plot(mean[:, 0], mean[:, 1], "k.", ms=3)
        ax.set_aspect("equal")
        ax.invert_yaxis()
    ax.set_title("each point's ambiguity (robust spread of model vs label)")
    ax.axis("off")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def add_arguments(parser) -> None:
    parser.add_argument(
        "--data", required=True, help="a 300-W-layout folder (.pts beside images) or a manifest (.parquet)"
    )
    parser.add_argument(
        "--out", required=True, help="the audit's folder (audit.json, suspects.png, ...; resumable)"
    )
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="folds of source photos (default 5)")
    parser.add_argument(
        "--init",
        default="",
        help="the folds' starting weights (a checkpoint folder or models:/NAME@ALIAS); default: the synthetic "
        "pretraining with generator-fitted labels, built once",
    )
    parser.add_argument(
        "--fix",
        default="",
        choices=("", "suggest"),
        help="suggest: write corrected .pts for suspects under OUT/suggested",
    )
    parser.add_argument(
        "--fold-epochs",
        type=int,
        default=FOLD_EPOCHS,
        help=f"epochs of fine-tuning per fold (default {FOLD_EPOCHS})",
    )
    parser.add_argument(
        "--smoke-test", action="store_true", help="the whole path at the smoke preset's size (minutes)"
    )


def local_cpus(base: C.RunSpec) -> int:
    """A local cluster's CPUs for an audit: its fold fine-tunes' or its pretraining's, whichever needs more."""
    from landmix import trainer

    return max(trainer.local_cpus(base), trainer.local_cpus(presets.synthetic()))


def run(args) -> int:
    from landmix.train_command import pinned_tracking

    base = audit_preset()
    if args.fold_epochs < 1:
        raise ValueError(f"--fold-epochs {args.fold_epochs}: give at least 1 epoch of fine-tuning per fold")
    base = replace(base, train=replace(base.train, epochs=args.fold_epochs))
    if args.smoke_test:
        base = presets.smoke_sized(base)
    faces = read_faces(args.data)  # a wrong folder or manifest, or --folds 1, said before anything starts
    folds_of([f.id for f in faces], args.folds)
    init = args.init
    if init:
        from landmix.train_command import with_init

        init = with_init(base, init).train.init_checkpoint
    settings.init_ray(num_cpus=local_cpus(base))
    report = run_audit(args.data, args.out, args.folds, init, pinned_tracking(base), args.fix)
    top = [r for r in report["faces"] if r.get("suspect")][:10]
    print(
        f"audit of {len(report['faces'])} faces: {report['suspects']} suspects (suspicion > {audit.SUSPECT}) "
        f"{report['kinds']}, {report['unreadable']} unreadable; {Path(args.out, 'audit.json')}"
    )
    for r in top:
        print(f"  {r['suspicion']:7.1f}  {r['kind']:8s} {r['image']}")
    return 1 if report["unreadable"] else 0
