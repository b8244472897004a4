"""`landmix audit` measured on planted errors: how many of the wrong labels it finds, of which kind, and what
dropping its suspects is worth to a model trained on the faces.

    LANDMIX_DATA_ROOT=../shared/data .venv/bin/python bench/audit.py planted --rate 0.02 --seed 0
    .venv/bin/python bench/audit.py shared      # the shared 300-W faces themselves: suspects, kinds, the sheet

`planted` copies the shared 300-W faces (images linked, labels written) into out/bench-audit/planted-<seed>/
faces with `--rate` of the non-test faces corrupted per kind (`landmix.audit.plant`: a left/right swap, a
shifted contour, an offset and scale, 1-3 misplaced points, a label away from the face), audits the copy
(`landmix.audit_command.run_audit`, resumable: run the command again after an interruption), and reports per
kind the precision and recall at k (k = the number planted: the k most suspicious faces) and the recall of the
suspects over `landmix.audit.SUSPECT`. With `--train`, it then trains the real-baseline recipe three times on
the copy: corrupted, corrupted minus the suspects, and clean, and reports each run's NME on the held-out test
faces (which are never corrupted, dropped or changed). `shared --train` trains it on the shared faces minus
their suspects beside the same clean run. The comparison trainings are budgeted in epochs (`--epochs`, 40:
about 2.5 min each here), not seconds, so a busy machine slows them without changing what they
learn; the clean run is trained once and shared by both parts. Each part appends a record to
docs/results/audit/records.jsonl (experiment "planted" / "planted-training" / "shared" / "shared-training").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402

from landmix import audit, presets, records, settings, trainer  # noqa: E402
from landmix.audit_command import audit_preset, local_cpus, run_audit  # noqa: E402
from landmix.config import DataConfig  # noqa: E402
from landmix.sources import w300  # noqa: E402
from landmix.sources.faces import face_id, list_faces  # noqa: E402
from landmix.sources.split import real_split  # noqa: E402

PAGE = "audit"
PLANTED_KINDS = ("swap", "contour", "offset", "points", "no_face")
TRAIN_EPOCHS = 40  # of 1024 faces at 160 px: about 2.5 min each on a quiet 2-core machine (2026-12-08)


def corrupted_copy(src: Path, dst: Path, rate: float, seed: int) -> dict[str, str]:
    """dst: the faces of src (images linked) with `rate` of the non-test faces corrupted per kind; returns
    {face id: kind} of the corrupted faces (also written to dst/planted.json)."""
    faces = list_faces(src, "300w")
    ids = [face_id(rel) for rel, _ in faces]
    test = set(real_split(ids, DataConfig()).test)
    rng = np.random.default_rng(seed)
    eligible = [i for i in rng.permutation(len(faces)) if ids[i] not in test]
    per_kind = int(round(rate * len(eligible)))
    planted: dict[str, str] = {}
    for n, kind in enumerate(PLANTED_KINDS):
        for i in eligible[n * per_kind : (n + 1) * per_kind]:
            planted[ids[i]] = kind
    if dst.exists():
        shutil.rmtree(dst)
    for (rel, pts), id_ in zip(faces, ids):
        image = dst / rel
        image.parent.mkdir(parents=True, exist_ok=True)
        image.symlink_to((src / rel).resolve())
        label = audit.plant(pts, planted[id_], rng) if id_ in planted else pts
        w300.write_pts(image.with_suffix(".pts"), label)
    (dst / "planted.json").write_text(json.dumps(planted, indent=1))
    return planted


def scores(report: dict, planted: dict[str, str]) -> dict:
    """Per kind: recall within the top k (k = all planted), the share named as that kind, the recall of the
    suspects; overall precision and recall at k and of the suspects."""
    rows = [r for r in report["faces"] if r.get("suspicion") is not None]
    k = len(planted)
    top = {r["id"] for r in rows[:k]}
    suspects = {r["id"] for r in rows if r["suspect"]}
    by_id = {r["id"]: r for r in rows}
    out = {
        "k": k,
        "precision_at_k": len(top & set(planted)) / k,
        "recall_at_k": len(top & set(planted)) / k,
        "suspects": len(suspects),
        "suspect_precision": len(suspects & set(planted)) / max(len(suspects), 1),
        "suspect_recall": len(suspects & set(planted)) / k,
    }
    for kind in PLANTED_KINDS:
        mine = [i for i, kd in planted.items() if kd == kind]
        out[f"{kind}_recall_at_k"] = len(set(mine) & top) / max(len(mine), 1)
        out[f"{kind}_named"] = sum(by_id[i]["kind"] == kind for i in mine if i in by_id) / max(len(mine), 1)
        out[f"{kind}_suspect_recall"] = len(set(mine) & suspects) / max(len(mine), 1)
    return out


def train_on(faces: Path, name: str, drop: set[str], work: Path, epochs: int, seed: int) -> dict:
    """The real-baseline recipe for `epochs` epochs on `faces` minus `drop` (withheld: never trained,
    validated or tested on); its metrics are kept in work/metrics.json, so a finished run is not trained again."""
    from landmix import inputs

    kept = work / "metrics.json"
    if kept.exists():
        return json.loads(kept.read_text())
    spec = presets.real_baseline()
    shards, _, _ = inputs.build_real(work, real_root=faces, crop_size=spec.model.image_size)
    spec = replace(
        spec,
        data=replace(spec.data, real_shards=str(shards), withheld=tuple(sorted(drop))),
        train=replace(spec.train, name=name, epochs=epochs, time_budget_s=0, seed=seed),
        tracking=replace(spec.tracking, uri="none"),
    )
    result = trainer.fit(spec, str(work / name))
    if result.error is not None:
        raise SystemExit(f"{name} failed: {result.error}; run the command again to resume it")
    m = result.metrics
    got = {k: m.get(k) for k in ("val_nme", "test_nme", "test_nme_helen", "test_nme_afw")}
    got["dropped"] = len(drop)
    kept.write_text(json.dumps(got))
    return got


def clean_run(epochs: int, seed: int) -> dict:
    """The shared faces as they are: the one baseline of both parts' comparisons."""
    work = settings.work_dir() / "bench-audit" / f"clean-e{epochs}-s{seed}"
    return train_on(
        settings.data_root() / "300w", f"audit-clean-e{epochs}-s{seed}", set(), work, epochs, seed
    )


def test_faces(faces: Path) -> set[str]:
    return set(real_split([face_id(rel) for rel, _ in list_faces(faces, "300w")], DataConfig()).test)


def training_record(experiment: str, params: dict, runs: dict[str, dict]) -> None:
    rec = records.new_record(PAGE, experiment, params)
    rec["metrics"] = {f"{run}_{k}": v for run, m in runs.items() for k, v in m.items()}
    print(json.dumps(rec["metrics"], indent=1))
    records.write_record(rec)


def planted_run(args) -> None:
    root = settings.work_dir() / "bench-audit" / f"planted-{args.seed}"
    faces = root / "faces"
    marker = faces / "planted.json"
    planted = (
        json.loads(marker.read_text())
        if marker.exists()
        else corrupted_copy(settings.data_root() / "300w", faces, args.rate, args.seed)
    )
    settings.init_ray(num_cpus=local_cpus(audit_preset()))
    rec = records.new_record(PAGE, "planted", {"rate": args.rate, "seed": args.seed, "folds": args.folds})
    report = run_audit(faces, root / "audit", folds=args.folds)
    rec["metrics"] = scores(report, planted) | {"minutes": round(report["fold_seconds"] / 60, 1)}
    print(json.dumps(rec["metrics"], indent=1))
    records.write_record(rec)
    if args.train:
        flagged = {r["id"] for r in report["faces"] if r.get("suspect")} - test_faces(faces)  # never dropped
        e, ts = args.epochs, args.train_seed
        runs = {
            "corrupted": train_on(
                faces, f"audit-corrupted-{args.seed}-s{ts}", set(), root / f"corrupted-e{e}-s{ts}", e, ts
            ),
            "cleaned": train_on(
                faces, f"audit-cleaned-{args.seed}-s{ts}", flagged, root / f"cleaned-e{e}-s{ts}", e, ts
            ),
            "clean": clean_run(e, ts),
        }
        params = {"rate": args.rate, "seed": args.seed, "epochs": e, "train_seed": ts}
        training_record("planted-training", params, runs)


def shared_run(args) -> None:
    settings.init_ray(num_cpus=local_cpus(audit_preset()))
    out = settings.work_dir() / "bench-audit" / "shared"
    rec = records.new_record(PAGE, "shared", {"folds": args.folds})
    report = run_audit(settings.data_root() / "300w", out, folds=args.folds, fix="suggest")
    rows = [r for r in report["faces"] if r.get("suspicion") is not None]
    rec["metrics"] = {
        "faces": len(report["faces"]),
        "suspects": report["suspects"],
        "test_suspects": sum(r["suspect"] and r["test_face"] for r in rows),
        "minutes": round(report["fold_seconds"] / 60, 1),
    } | {f"suspects_{k}": v for k, v in report["kinds"].items()}
    print(json.dumps(rec["metrics"], indent=1), f"sheet: {report['files']['sheet']}")
    records.write_record(rec)
    if args.train:
        faces = settings.data_root() / "300w"
        flagged = {r["id"] for r in rows if r["suspect"]} - test_faces(faces)  # test faces: never dropped
        e, ts = args.epochs, args.train_seed
        without = train_on(faces, f"audit-shared-without-s{ts}", flagged, out / f"without-e{e}-s{ts}", e, ts)
        runs = {"without_suspects": without, "clean": clean_run(e, ts)}
        training_record("shared-training", {"epochs": e, "train_seed": ts}, runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("planted", help="planted errors: found, named, and what dropping them is worth")
    a.add_argument("--rate", type=float, default=0.02, help="share of the non-test faces corrupted per kind")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--folds", type=int, default=5)
    a.add_argument("--train", action="store_true", help="then train on corrupted / cleaned / clean faces")
    s = sub.add_parser("shared", help="the shared 300-W faces themselves")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument(
        "--train", action="store_true", help="then train on them without their suspects / as they are"
    )
    for parser in (a, s):
        parser.add_argument(
            "--epochs", type=int, default=TRAIN_EPOCHS, help="epochs of each comparison training"
        )
        parser.add_argument(
            "--train-seed", type=int, default=0, help="the comparison trainings' seed (train.seed)"
        )
    args = p.parse_args()
    planted_run(args) if args.what == "planted" else shared_run(args)


if __name__ == "__main__":
    main()
