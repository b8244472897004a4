"""Pretrain once, fan out: the synthetic-only training of each seed, and the label translator's real-face round
(the fit itself is landmix.relabel's).

The synthetic-only training runs once per distinct config (per seed) in the driver before the Tuner starts,
alone, on the CPUs the trials will share (`SweepConfig.pretrain_cpus_per_worker`). It is three arms' model:
the data-adaptation arm (its own cell, `synthetic_only`), the model whose outputs label adaptation translates
(`landmix.sweep.adapt`), and the start of every `pretrain_finetune` trial. A finished one leaves
`pretrain/<name>/pretrain.json` in the sweep's folder (checkpoint, seconds, final metrics, the faces it was
validated and tested on and each test face's error), so a re-run skips it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

from landmix import config as cfg
from landmix import pretraining
from landmix.sweep import results
from landmix.sweep.spec import METRIC, Cell, SweepConfig, needs_pretraining


def pretrain_spec(sweep: SweepConfig, seed: int, tracking_uri: str, parent_run_id: str) -> cfg.RunSpec:
    """The synthetic-only training of one seed (data adaptation; label adaptation's model; the fine-tunes' start)."""
    base = sweep.base
    t = base.train
    spec = replace(
        base,
        data=replace(
            base.data,
            strategy="synthetic_only",
            n_real=0,
            alpha=1.0,
            pretrain_epochs=0,
            augment_strength=sweep.augment_strength,
        ),
        train=replace(
            t,
            seed=seed,
            lr=sweep.lr,
            epochs=sweep.pretrain_epochs,
            init_checkpoint="",
            time_budget_s=sweep.pretrain_budget_s or t.time_budget_s,
            cpus_per_worker=sweep.pretrain_cpus_per_worker or t.cpus_per_worker,
            storage_path=sweep.ray_storage("pretrain"),
        ),
        tracking=replace(
            base.tracking,
            uri=tracking_uri,
            experiment=sweep.name,
            parent_run_id=parent_run_id,
            strategy_label="pretrain",
        ),
    )
    # Keyed by the shards' content too (re-prepared shards under the same path re-pretrain), by the one key
    # function `landmix train --preset synthetic` uses; where it is tracked does not change what it trains.
    key = pretraining.key(spec)
    name = f"pretrain-s{seed}-{key}"
    return replace(
        spec, train=replace(spec.train, name=name), tracking=replace(spec.tracking, run_label=name)
    )


def pretrain(
    sweep: SweepConfig, seed: int, tracking_uri: str, parent_run_id: str, shared_pools: dict | None = None
) -> dict:
    """The synthetic-only training of one seed, run once: {"checkpoint": uri, "seconds", "run_id", "metrics",
    "faces"}, kept in a marker file under the sweep's folder so that a re-run (or a resumed sweep) finds it."""
    from landmix import checkpoint, trainer

    spec = pretrain_spec(sweep, seed, tracking_uri, parent_run_id)
    marker = sweep.root / "pretrain" / spec.train.name / "pretrain.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        print(f"synthetic-only training seed {seed}: reusing {info['checkpoint']}", flush=True)
        return info
    t0 = time.monotonic()
    result = trainer.build_trainer(spec, shared_pools=shared_pools).fit()
    if result.checkpoint is None:
        raise RuntimeError(f"pretraining {spec.train.name} ended without a checkpoint: {result.error}")
    info = {
        "checkpoint": checkpoint.checkpoint_uri(result.checkpoint),
        "seconds": time.monotonic() - t0,
        "val_nme": result.metrics.get(METRIC),
        **results.from_checkpoint(result),
    }
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(info))
    return info


def run_pretraining(
    sweep: SweepConfig, tracking_uri: str, parent_run_id: str, shared_pools: dict | None = None
) -> dict[int, dict]:
    """Run (or find) one synthetic-only training per seed, and record the seed's data-adaptation cell from it.
    Returns seed -> its `pretrain` info (checkpoint, seconds, ...); {} when no arm of the sweep needs one."""
    out = {}
    if not needs_pretraining(sweep):  # the optimising mode samples from the same strategies
        return out
    for seed in sweep.seeds:
        out[seed] = info = pretrain(sweep, seed, tracking_uri, parent_run_id, shared_pools)
        cell = Cell("synthetic_only", n_real=0, alpha=1.0, seed=seed)
        if (
            "synthetic_only" in sweep.strategies
            and sweep.mode == "grid"
            and not results.is_finished(sweep, cell)
        ):
            results.write_cell_result(
                sweep,
                cell,
                info["metrics"],
                info["seconds"],
                info["faces"],
                mlflow_run_id=info.get("run_id", ""),
            )
    return out


def synthetic_model(sweep: SweepConfig, tracking_uri: str = "none") -> str:
    """The checkpoint (a folder or a URI) of the sweep's synthetic-only model of its first seed, trained on its
    synthetic shards as they are labelled now (not tracked in MLflow by default; its marker makes a re-run
    reuse it): what a re-labelling round fits its map on (`landmix.relabel.rounds`)."""
    return pretrain(sweep, sweep.seeds[0], tracking_uri, "")["checkpoint"]


def translator_path(
    sweep: SweepConfig, n_faces: int, offset_only: bool, modes: int, base: str, model: str
) -> Path:
    """Where a re-labelling round's chain is kept under the sweep's folder: keyed by the model it was fitted on,
    the faces, the translator it is chained after (`base`) and the kind of map."""
    key = hashlib.sha1(json.dumps([model, n_faces, base, offset_only, modes]).encode()).hexdigest()[:10]
    kind = f"modes{modes}" if modes else "offset" if offset_only else "ridge"
    return (
        sweep.root / "translators" / f"real{'all' if n_faces == cfg.ALL_REAL else n_faces}-{kind}-{key}.npz"
    )


def fit_real_translator(
    sweep: SweepConfig, n_faces: int, tracking_uri: str = "none", offset_only: bool = True, modes: int = 0
) -> Path:
    """The label translator's second stage, fitted on real faces, chained after the current one: one
    re-labelling round on the sweep's synthetic shards as they are.

    Pretrains a synthetic-only model on the sweep's synthetic shards (`synthetic_model`), fits IBUG68 as that
    model places the points -> IBUG68 as the 300-W annotators did on the first `n_faces` real training faces in
    the n_real order (cfg.ALL_REAL = all; the held-out faces are never used; a per-point offset unless
    offset_only=False; the offset plus a map of the predicted shape's first `modes` principal components with
    modes > 0: see `relabel.fit_translator`), and saves sweep.translator-then-real-fit as one chain under the
    sweep's folder (`translator_path`), with a JSON report beside it (held-out NME before/after). Cached by the
    checkpoint and n_faces. Re-prepare the synthetic shards with the returned .npz (`inputs.build_inputs`);
    `relabel.rounds` repeats it.
    """
    from landmix import relabel

    model = synthetic_model(sweep, tracking_uri)
    base = sweep.translator or ""
    out = translator_path(sweep, n_faces, offset_only, modes, base, model)
    return relabel.fit_round(model, out, n_faces, offset_only, modes, base=[base] if base else [])
