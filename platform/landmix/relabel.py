"""Real-fitted label translators and the re-labelling rounds: a synthetic-trained model's predictions on real
TRAINING faces, paired with their human labels, fit an IBUG68 -> IBUG68 map (landmix.translate) from how the
model places the points to how the 300-W annotators did.

Two uses. For a model's OUTPUTS (`landmix fit-translator --for-predictions`, `landmix eval --translator`;
`adapt_outputs`, the sweep's label-adaptation arm): the full ridge map, the translation layer the FaceSynthetics
authors recommend. For re-labelling the synthetic faces (`landmix fit-translator`, `relabel_chain`): only the
per-point offset (optionally with a map of the predicted shape's first principal components), since the full map
also undoes the model's shrinkage, wrong for labels; chained after the translator that labelled the model's
faces (`translate.chain`, one .npz), it re-labels every synthetic face in the prepare step.

`rounds` repeats that: train a synthetic model on the current labels, fit the map on it, chain, re-label,
R times. The caller trains and re-labels (its own recipe, its own file names); this module fits and chains:

    chain = relabel.rounds(start, 2, train=..., out=..., modes=135)   # [start, round 1's .npz, round 2's .npz]

`jobs/tune_mix.py --translator-rounds R` and `bench/generator_ablation.py --relabel-rounds R` call it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from landmix import config as C
from landmix import translate
from landmix.checkpoint import data_config, load, predict, read_meta
from landmix.schemes import IBUG68
from landmix.sources.split import real_split

JAW = list(IBUG68.groups["jaw"])  # the points where the x-ray and annotator conventions differ most
INNER = [i for i in range(IBUG68.num_points) if i not in JAW]  # brows, nose, eyes, mouth


def _nme_pct(pred: np.ndarray, gt: np.ndarray, points=slice(None)) -> float:
    from landmix import metrics

    return round(float(metrics.nme(pred, gt, IBUG68, points).mean() * 100), 3)


def trained_with(meta: dict) -> list[str]:
    """The translator file(s) a checkpoint's synthetic labels were prepared with (from the shards' prepare.json).

    [] when the model saw no synthetic shards or they were translated by the fixed table."""
    from landmix.pool import prepare_summary

    folder = meta["config"]["data"].get("synthetic_shards")
    if not folder:
        return []
    summary = prepare_summary(folder)
    if summary is None:
        raise ValueError(
            f"no prepare.json beside {folder}: cannot tell which translator labelled it; pass --base"
        )
    cfg = json.loads(summary.read_text())["config"]
    paths = cfg.get("translator") or []
    return [paths] if isinstance(paths, str) else list(paths)


def fit_translator(
    checkpoint: str,
    real_shards: str,
    data: C.DataConfig,
    n_faces: int = C.ALL_REAL,
    offset_only: bool = True,
    modes: int = 0,
) -> tuple[translate.Translator, dict]:
    """Fit IBUG68 (as a synthetic-trained model places the points) -> IBUG68 (as the 300-W annotators did).

    The model predicts the 68 points on the real TRAINING pool of the fixed split under `data`
    (`sources.split.real_split` with data's fractions and seed;
    the validation and test faces are never used for the fit); the first `n_faces` of them in the n_real
    order (C.ALL_REAL = all), the same faces an n_real = n_faces run fine-tunes on, pair the predictions with
    the human labels. Returns the translator and a report: NME in % of the inter-ocular distance on the
    held-out (validation) faces, before and after translating the model's predictions, and how far the map
    moves the held-out faces' HUMAN labels (`human_labels_moved`), which are already in the target
    convention: a map meant for training labels should barely move them.

    offset_only (the default, for re-labelling synthetic faces): the map is the mean per-point displacement
    in pose-normalised coordinates, no linear part. The full ridge map (offset_only=False, penalty by
    cross-validation) translates the model's OUTPUTS better, but most of what it learns is the model's own
    shrinkage towards the mean shape: it undoes it by expanding shape variation, which is right for
    predictions and wrong for labels (on the study's model it moves human labels by 2.5 x the inter-ocular
    distance, and synthetic labels re-labelled with it are scattered; docs/results/prepare.md).
    modes > 0 (between the two, for re-labelling): the offset plus a linear map of the predicted shape's first
    `modes` principal components (head pose, mouth opening, ..; `translate.fit`), penalty by cross-validation.
    """
    from landmix import mixing, pool

    model, _ = load(checkpoint)
    size = model.cfg.image_size
    real = pool.read_shards(real_shards, model.cfg)
    split = real_split(real.ids, data)
    fit_pool, val_pool = (
        real.take(mixing.real_subset(split.train, n_faces, data.split_seed)),
        real.take(split.val),
    )
    if len(fit_pool) < 5:
        raise ValueError(f"{len(fit_pool)} real training faces in {real_shards}; the fit needs at least 5")
    alphas = translate.OFFSET_ONLY if offset_only and not modes else translate.RIDGE_ALPHAS
    fit_images, fit_pts = fit_pool.model_inputs(size)
    val_images, val_pts = val_pool.model_inputs(size)
    tr = translate.fit(predict(model, fit_images), fit_pts, IBUG68, IBUG68, alphas=alphas, modes=modes)
    pred = predict(model, val_images)

    def scores(p):
        return {
            "all": _nme_pct(p, val_pts),
            "jaw": _nme_pct(p, val_pts, JAW),
            "inner": _nme_pct(p, val_pts, INNER),
        }

    report = {
        "checkpoint": str(checkpoint),
        "real_shards": str(real_shards),
        "fit_faces": len(fit_pool),
        "fit_ids": list(fit_pool.ids),  # what "fitted on training-pool faces only" is checked against
        "held_out_faces": len(val_pool),
        "alpha": tr.alpha,
        "version": tr.version,
        "offset_only": offset_only and not modes,
        "modes": modes,
        "held_out_nme_before": scores(pred),
        "held_out_nme_after": scores(tr(pred)),
        "human_labels_moved": scores(tr(val_pts)),
    }
    return tr, report


def adapt_outputs(pred: np.ndarray, gt: np.ndarray, ids: list[str], n_faces: int, data: C.DataConfig) -> dict:
    """Label adaptation: translate a synthetic-trained model's OUTPUTS to the 300-W annotators' convention by a
    map fitted on n_faces real training faces (the first of the n_real order, the faces an n_real = n_faces run
    trains on), as the seed study's label-adaptation arm does.

    pred, gt: the model's predictions and the human labels (N, 68, 2) for the real faces `ids` (all of the
    shards: the split is made here, `sources.split.real_split` with data's fractions and seed). Two maps are
    fitted, the per-point offset and the ridge map (penalty by cross-validation); the one with the lower NME on
    the validation faces is kept. The test faces are only scored. Returns {"translator", "kind", "val_errors",
    "test_errors", "faces": {"train", "val", "test"}}.
    """
    from landmix import metrics, mixing

    split = real_split(ids, data)
    fit_ids = mixing.real_subset(split.train, n_faces, data.split_seed)
    if len(fit_ids) < 5:
        raise ValueError(
            f"label adaptation needs at least 5 real training faces to fit on; n_real={n_faces} "
            f"gives {len(fit_ids)}"
        )
    pos = {i: k for k, i in enumerate(ids)}

    def at(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        idx = [pos[i] for i in keys]
        return pred[idx], gt[idx]

    (fp, fg), (vp, vg), (tp, tg) = at(fit_ids), at(split.val), at(split.test)
    best = None
    for kind, alphas in (("offset", translate.OFFSET_ONLY), ("ridge", translate.RIDGE_ALPHAS)):
        tr = translate.fit(fp, fg, IBUG68, IBUG68, alphas=alphas, folds=min(5, len(fit_ids)))
        val_errors = metrics.nme(tr(vp), vg)
        if best is None or val_errors.mean() < best["val_errors"].mean():
            best = {"translator": tr, "kind": kind, "val_errors": val_errors}
    best["test_errors"] = metrics.nme(best["translator"](tp), tg) if len(tp) else np.zeros(0)
    return best | {"faces": {"train": fit_ids, "val": split.val, "test": split.test}}


def relabel_chain(
    checkpoint: str,
    real_shards: str,
    data: C.DataConfig,
    n_faces: int = C.ALL_REAL,
    offset_only: bool = True,
    modes: int = 0,
    base: list[str] | None = None,
) -> tuple[translate.Translator | translate.Chain, dict]:
    """The translator for re-labelling the synthetic faces a model trained on: the real-face stage
    (`fit_translator`: the offset, with `modes` principal components, or the full map) chained after `base`, the
    translator(s) that labelled those faces (default: read from the model's synthetic shards, `trained_with`).
    Returns the chain and `fit_translator`'s report with "base" added."""
    base = base if base is not None else trained_with(read_meta(checkpoint))
    real_stage, report = fit_translator(checkpoint, real_shards, data, n_faces, offset_only, modes)
    return translate.chain(translate.load_or_fixed(base), real_stage), report | {"base": base}


def save_translator(tr: translate.Translator | translate.Chain, report: dict, out) -> Path:
    """The translator at `out` (.npz) and its fit report beside it (.json, with the saved version)."""
    out = tr.save(out)
    out.with_suffix(".json").write_text(json.dumps(report | {"saved_version": tr.version}, indent=1))
    return out


def fit_round(
    model: str,
    out: Path,
    n_faces: int = C.ALL_REAL,
    offset_only: bool = True,
    modes: int = 0,
    base: list[str] | None = None,
) -> Path:
    """One re-labelling round's fit: `relabel_chain` on the checkpoint `model` (a folder, or a URI such as
    s3://... that `ray.train.Checkpoint` reads), on its own real shards and split (its meta.json), saved at
    `out` with its report; reused where `out` exists. `base` as in `relabel_chain` ([] = the fixed table)."""
    import ray.train

    out = Path(out)
    if out.exists():
        return out
    with ray.train.Checkpoint(model).as_directory() as folder:
        data = data_config(read_meta(folder))
        tr, report = relabel_chain(folder, data.real_shards, data, n_faces, offset_only, modes, base)
    save_translator(tr, report, out)
    b, a = report["held_out_nme_before"]["all"], report["held_out_nme_after"]["all"]
    print(
        f"label translator fitted on {report['fit_faces']} real training faces: the synthetic-trained model's "
        f"held-out NME {b} -> {a} %; {tr.version} -> {out}",
        flush=True,
    )
    return out


def rounds(
    translator: str,
    n_rounds: int,
    train: Callable[[str], str],
    out: Callable[[str, str], Path],
    n_faces: int = C.ALL_REAL,
    offset_only: bool = True,
    modes: int = 0,
) -> list[str]:
    """Re-label the synthetic faces `n_rounds` times, each round from a model trained on the last round's labels.

    Each round: `train(translator)` trains a synthetic-only model on the faces labelled by `translator` and
    returns its checkpoint (a folder or a URI); the map from its predictions to the human labels of the first
    `n_faces` real training faces (`fit_round`: the offset, with `modes` principal components, or the full map
    with offset_only=False) is chained after `translator` and saved at `out(translator, checkpoint)` (a round
    whose file exists is not fitted again). translator "" (the first round only): whatever labelled the model's
    faces, as its shards' prepare.json names it. Returns every round's translator in order, `translator` first:
    re-label with the last and train on it (the caller's final model)."""
    chain = [translator]
    for _ in range(n_rounds):
        model = train(translator)
        base = [translator] if translator else None
        translator = str(fit_round(model, out(translator, model), n_faces, offset_only, modes, base))
        chain.append(translator)
    return chain


def add_arguments(parser) -> None:
    """`landmix fit-translator`."""
    parser.add_argument(
        "--checkpoint", required=True, help="a synthetic-trained checkpoint folder (landmix train)"
    )
    parser.add_argument("--real-shards", required=True, help="prepared real 300-W shards (landmix prepare)")
    parser.add_argument(
        "--faces",
        type=int,
        default=C.ALL_REAL,
        help=f"real training faces to fit on, in the n_real order (default {C.ALL_REAL} = all)",
    )
    parser.add_argument(
        "--base",
        nargs="*",
        default=None,
        help="translator(s) the model's synthetic labels went through, applied first in the "
        "output chain (default: read from the model's synthetic shards' prepare.json)",
    )
    parser.add_argument(
        "--for-predictions",
        action="store_true",
        help="fit the full ridge map and save it alone (IBUG68 -> IBUG68) for translating a model's "
        "predictions (landmix eval --translator), instead of the per-point offset chained "
        "after --base for re-labelling synthetic faces (landmix prepare --translator)",
    )
    parser.add_argument(
        "--modes",
        type=int,
        default=0,
        help="for re-labelling: the per-point offset plus a linear map of the predicted shape's "
        "first MODES principal components (head pose, mouth opening, ..), not the offset alone",
    )
    parser.add_argument(
        "--out", required=True, help="the .npz to write (a .json report is written beside it)"
    )


def run(args) -> int:
    """`landmix fit-translator`: fit, chain after the translator that labelled the model, save with a report."""
    data = data_config(read_meta(args.checkpoint))  # the run's split; says if no checkpoint
    if args.modes and args.for_predictions:
        raise ValueError(
            "--modes is a map for re-labelling synthetic faces; --for-predictions fits the full map"
        )
    if args.for_predictions:
        tr, report = fit_translator(args.checkpoint, args.real_shards, data, args.faces, offset_only=False)
    else:
        tr, report = relabel_chain(
            args.checkpoint, args.real_shards, data, args.faces, modes=args.modes, base=args.base
        )
    out = save_translator(tr, report, args.out)
    b, a = report["held_out_nme_before"], report["held_out_nme_after"]
    print(
        f"fitted on {report['fit_faces']} real training faces; held-out NME {b['all']} -> {a['all']} % "
        f"(jaw {b['jaw']} -> {a['jaw']}); it moves human labels by {report['human_labels_moved']['all']} %; "
        f"{tr.version} -> {out} (report: {Path(out).with_suffix('.json')})"
    )
    return 0
