"""The study's selection dimension: which n_real real faces to label, picked by each method of `landmix.select`.

Once per seed, before the trials, the seed's synthetic-only model ranks the real TRAINING pool (the validation
and test faces are never candidates) by each method; a cell (strategy, n_real, method, seed) trains on the
first n_real of its ranking, so the picks are nested as the random n_real order is. The ranking reads the
pool's photos through the face detector, as `landmix select` reads a user's folder: the selection never sees
a label or a crop framed by one (`rank_pool` is given the photos' paths, not the decoded pool). Only the
faces it picked are then looked up in the annotations, by id, for training.

Kept in the sweep's folder under selection/: detections.json (the detector's best box per photo, computed once
for every seed), picks-s<seed>.json (each method's ranking, the photos where no face was found), and for the
first seed each method's contact sheet and coverage figure (also artifacts of the sweep's MLflow parent run).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from landmix import config as cfg
from landmix.sweep.spec import SweepConfig

FIGURE_PICKS = 50  # faces on each method's contact sheet and coverage figure


def rank_pool(
    model, ids: list[str], photos: list[Path], detections: list[dict], methods, count: int, seed: int
) -> tuple[dict[str, list[str]], object]:
    """Each method's first `count` picks among the photos (one face each, named by ids) -> ({method: ids},
    the described candidates). Reads the photos, never their labels."""
    from landmix import candidates, ranking

    cands = candidates.describe_pool(model, photos, ids, detections)
    return {m: [ids[i] for i in ranking.rank(cands, m, count, seed)] for m in methods}, cands


def run_selection(
    sweep: SweepConfig,
    pretrained: dict[int, dict],
    real,
    tracking_uri: str | None = None,
    parent_run_id: str = "",
) -> dict[tuple[int, str], list[str]]:
    """(seed, method) -> the method's ranking of the real training pool (as many as the largest n_real below
    all), for every seed and selection method of the sweep but random; {} when the sweep has none.
    real: the sweep's decoded real Pool (its ids and photo paths are read, not its labels)."""
    import ray.train

    from landmix import candidates, checkpoint, tracking
    from landmix.sources.split import real_split

    methods = [m for m in sweep.selections if m != "random"]
    if not methods:
        return {}
    d = sweep.base.data
    split = real_split(real.ids, d)
    ids = sorted(split.train)
    where = dict(zip(real.ids, real.paths))
    photos = [Path(where[i]) for i in ids]
    count = max(n for n in sweep.n_real if n != cfg.ALL_REAL)
    folder = sweep.root / "selection"
    folder.mkdir(parents=True, exist_ok=True)
    det_file = folder / "detections.json"
    if det_file.exists():
        known = json.loads(det_file.read_text())
    else:
        t0 = time.monotonic()
        known = dict(zip(ids, candidates.find_faces(photos)))
        det_file.write_text(json.dumps(known))
        print(
            f"selection: faces detected in {len(ids)} training-pool photos in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
    detections = [known[i] for i in ids]
    out = {}
    for seed, info in sorted(pretrained.items()):
        picks_file = folder / f"picks-s{seed}.json"
        if picks_file.exists():
            saved = json.loads(picks_file.read_text())
        else:
            t0 = time.monotonic()
            with ray.train.Checkpoint(info["checkpoint"]).as_directory() as ckpt:
                model, _ = checkpoint.load(ckpt)
            ranking, cands = rank_pool(model, ids, photos, detections, methods, count, seed)
            saved = {
                "methods": ranking,
                "checkpoint": info["checkpoint"],
                "n_pool": len(ids),
                "no_face": [i for i, d in zip(ids, detections) if d["box"] is None],
                "seconds": time.monotonic() - t0,
            }
            if seed == min(pretrained):
                figures = _figures(
                    folder, seed, photos, cands, ids, ranking, sweep.base.data.synthetic_shards
                )
                saved |= {"figures": [str(p) for p in figures[0]], "coverage_gaps": figures[1]}
            picks_file.write_text(json.dumps(saved, indent=1))
            print(
                f"selection seed {seed}: {len(ids)} training-pool photos ranked by {', '.join(methods)} "
                f"({len(saved['no_face'])} with no face found: ranked last) in {saved['seconds']:.0f} s",
                flush=True,
            )
        if tracking_uri:  # the picks and figures are artifacts of the sweep's parent run (again on a re-run)
            for path in [picks_file, *map(Path, saved.get("figures", []))]:
                tracking.log_file(tracking_uri, parent_run_id, path, "selection")
        out |= {(seed, m): saved["methods"][m] for m in methods}
    return out


def _figures(folder: Path, seed: int, photos, cands, ids, ranking, synthetic_shards: str):
    """Each method's contact sheet and coverage figure of its first FIGURE_PICKS picks, and the coverage gaps."""
    from landmix import descriptors, select

    syn = descriptors.synthetic_descriptors(synthetic_shards) if synthetic_shards else None
    pos = {i: k for k, i in enumerate(ids)}
    paths = []
    for m, picked in ranking.items():
        idx = [pos[i] for i in picked[:FIGURE_PICKS]]
        paths.append(select.contact_sheet(photos, cands, idx, folder / f"{m}-s{seed}-sheet.png"))
        paths.append(
            select.plot_coverage(
                cands,
                idx,
                folder / f"{m}-s{seed}-coverage.png",
                syn,
                f"{m}: first {len(idx)} of {len(ids)} training-pool photos, seed {seed}",
            )
        )
    gaps = descriptors.coverage_gaps(cands.descriptors, syn) if syn is not None else []
    return paths, gaps


def add_to_report(sweep: SweepConfig, files: dict[str, Path]) -> dict[str, Path]:
    """Put the first seed's pick sheets and coverage figures beside the report and under its selection table,
    with the synthetic set's coverage gaps (the generator's to-do list); returns files with them added."""
    saved = sorted(
        (sweep.root / "selection").glob("picks-s*.json"), key=lambda p: int(p.stem.split("-s")[-1])
    )
    if not saved or "summary_md" not in files:
        return files
    first = json.loads(saved[0].read_text())
    seed = saved[0].stem.split("-s")[-1]
    lines = [
        "",
        f"### The picks and where they lie (seed {seed}'s model, each method's first picks, up to "
        f"{FIGURE_PICKS})",
        "",
        f"{first['n_pool']} training-pool photos, {len(first['no_face'])} with no face found by the detector "
        "(ranked after the others by every method but random). Sheets: the model's crop and predicted points, "
        "captioned with the pick's rank and its disagreement; figures: the pool (grey), the picks (red) and the "
        "synthetic faces (blue) in pose, expression and the model's appearance space.",
        "",
    ]
    report_dir = Path(files["summary_md"]).parent
    for path in map(Path, first.get("figures", [])):
        if path.exists():
            shutil.copy2(path, report_dir / path.name)
            files[f"selection_{path.stem}"] = report_dir / path.name
            lines += [f"![{path.stem}]({path.name})", ""]
    gaps = first.get("coverage_gaps")
    if gaps:
        lines += [
            "Coverage gaps of the synthetic faces (bins of the pool's predicted shapes that the generator "
            "rarely makes; `landmix.descriptors.coverage_gaps`):",
            "",
            "| descriptor | bin | share of the pool | share of the synthetic faces |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {g['descriptor']} | {g['bin'][0]:g} to {g['bin'][1]:g} | {g['pool_share']:.1%} | "
            f"{g['synthetic_share']:.1%} |"
            for g in gaps
        ]
    elif gaps is not None:
        lines += [
            "No coverage gap in pose or expression: every bin of the descriptors (yaw, pitch, roll, mouth and "
            "eye opening) that holds at least 2 % of the pool's faces holds at least 2 % of the synthetic "
            "faces too (`landmix.descriptors.coverage_gaps`)."
        ]
    summary = Path(files["summary_md"])
    summary.write_text(summary.read_text() + "\n".join(lines) + "\n")
    return files
