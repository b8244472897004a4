"""The platform's own synthetic pretraining: the synthetic-only model that `landmix train --preset pretrained`
fine-tunes from, and that `landmix train --preset synthetic` builds and registers on its own.

    info = pretraining.build(pretraining.Recipe())   # built once under the work folder; a re-run reuses it
    info["checkpoint"], info["minutes"]

What it trains (the recipe of docs/results/generate.md, budgets in epochs):
1. inputs (`landmix.inputs.build_inputs`): `n_generated` faces of today's generator (its version keys the
   folder), their x-ray labels translated by the map fitted on the generator's paired conventions, cropped by the
   crop distribution of the real training pool; plus the FaceSynthetics folders named in `renders`;
2. `relabel_rounds` re-labelling rounds (`landmix.relabel.rounds`): a synthetic-only model at the recipe, the
   map from its predictions on the real training-pool faces to their human labels (`relabel_modes` principal
   components), chained after the labels it learnt from; the synthetic faces re-labelled by the chain;
3. the synthetic-only model on the last round's labels: the pretraining.

What it saw of the real faces, every real-fitted asset fitted on the TRAINING POOL of the run's split only: the
translator stages (`relabel.fit_translator`'s report lists its faces), the crop distribution
(`prepare.crop_fit_ids`) and the generator's fitted priors (`generate.shape_prior`, `pose_prior`,
`light_prior`: the training split). The validation faces choose the best epoch of each run; the test faces are
scored once per finished run and choose nothing.

Each training run is cached under `key(spec)`, the function the sweep's pretraining uses too
(`landmix.sweep.pretrain`): the run's config and the content of its synthetic shards (their prepare.json names
the generator's version and the translator chain). A run's Ray Train name is its key, so an interrupted build
resumes from the run's last epoch checkpoint when started again; a finished one leaves its checkpoint and a
`pretraining.json` under `<work>/pretraining/<name>/`.

With tracking on (MLFLOW_TRACKING_URI), the final model is registered as `landmix-synthetic` (alias `best`)
with its provenance as version tags; `landmix train --init models:/landmix-synthetic@best` starts from it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from landmix import config as C
from landmix import presets, settings

REGISTERED_NAME = "landmix-synthetic"
MARKER = "pretraining.json"


@dataclass(frozen=True)
class Recipe:
    """The synthetic pretraining: which faces, how they are labelled, and the training run (`spec`: the
    real-baseline recipe on synthetic faces only, in epochs)."""

    spec: C.RunSpec = field(default_factory=lambda: presets.synthetic())
    n_generated: int = 10_000  # faces drawn by the embedded generator (today's look)
    renders: tuple[str, ...] = ()  # FaceSynthetics-layout folders added to the generated faces
    real_root: str = (
        ""  # the real faces (a 300-W-layout folder): "" = the shared ones, $LANDMIX_DATA_ROOT/300w
    )
    relabel_rounds: int = 2  # re-labelling rounds (docs/results/generate.md: 2 brought 6.0 % to 4.9 %)
    relabel_modes: int = 135  # principal components the rounds' map reads (135: the full linear map)
    gen_seed: int = 0  # seed of the generated faces

    def __post_init__(self):
        if self.spec.data.strategy != "synthetic_only":
            raise ValueError(f"a pretraining trains on synthetic faces only, not {self.spec.data.strategy!r}")
        if self.n_generated < 0 or self.relabel_rounds < 0 or (not self.n_generated and not self.renders):
            raise ValueError(
                f"n_generated={self.n_generated}, renders={self.renders}, relabel_rounds={self.relabel_rounds}: "
                "give generated faces or FaceSynthetics folders, and rounds >= 0"
            )


def key(spec: C.RunSpec) -> str:
    """A training run's cache key: its config (without where it is tracked: that changes nothing it trains) and
    the content of its synthetic shards (`shards_key`), so re-prepared shards under the same path train anew."""
    config = {k: v for k, v in C.to_dict(spec).items() if k != "tracking"}
    if not config["data"]["withheld"]:  # a field added later: runs that withhold nothing keep their keys
        del config["data"]["withheld"]
    ident = {"spec": config, "synthetic": shards_key(spec.data.synthetic_shards)}
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]


def shards_key(folder: str) -> str:
    """What a `landmix prepare` folder was built from and holds: a hash of its prepare.json, or, where there is
    none (shards written by other means), of the Parquet files' names and bytes, so that re-written shards
    never reuse an old pretraining. "" when there are no shards (yet)."""
    from landmix.pool import prepare_summary, shard_folder

    try:
        summary = prepare_summary(folder)
    except FileNotFoundError:  # no shards (yet)
        return ""
    if summary:
        return hashlib.sha1(summary.read_bytes()).hexdigest()[:12]
    files = sorted(shard_folder(folder).glob("*.parquet"))
    hashes = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    return "parquet-" + hashlib.sha1(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:12]


def root() -> Path:
    """Where finished pretraining runs are kept: <work>/pretraining/."""
    return settings.work_dir() / "pretraining"


def train_once(spec: C.RunSpec, label: str) -> dict:
    """Train `spec` once under the name `<label>-<key>` (a finished run is found by its marker and not trained
    again; an unfinished one resumes from its Ray Train checkpoint): {"name", "checkpoint" (a folder),
    "seconds", "metrics", "mlflow_run_id", "reused"}."""
    from landmix import trainer

    name = f"{label}-{key(spec)}"
    folder = root() / name
    marker = folder / MARKER
    if marker.exists():
        return json.loads(marker.read_text()) | {"reused": True}
    spec = replace(spec, train=replace(spec.train, name=name))
    t0 = time.monotonic()
    result = trainer.fit(spec, str(folder))
    if result.error is not None or result.checkpoint is None:
        raise RuntimeError(f"pretraining run {name} failed: {result.error}; start it again to resume")
    meta = json.loads((folder / "checkpoint" / "meta.json").read_text())
    numeric = {
        k: v for k, v in result.metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    info = {
        "name": name,
        "checkpoint": str(folder / "checkpoint"),
        "seconds": round(time.monotonic() - t0, 1),
        "metrics": numeric,
        "mlflow_run_id": meta.get("mlflow_run_id") or "",
        "synthetic_shards": spec.data.synthetic_shards,
    }
    marker.write_text(json.dumps(info, indent=1))
    return info | {"reused": False}


def build(recipe: Recipe, work: Path | None = None) -> dict:
    """The pretraining of `recipe`, built once (see the module docstring): {"checkpoint", "minutes" (this
    call's), "runs" (each round's run and the final one), "chain" (the translators, in order), "registered"}."""
    from landmix import inputs as inputs_mod
    from landmix import relabel

    t0 = time.monotonic()
    work = Path(work or settings.work_dir())
    spec = recipe.spec
    size = C.shard_size(spec.model)
    runs: list[dict] = []

    def shards(translator: str) -> inputs_mod.Inputs:
        return inputs_mod.build_inputs(
            work,
            real_root=Path(recipe.real_root) if recipe.real_root else None,
            synthetic_roots=[Path(r) for r in recipe.renders],
            n_generated=recipe.n_generated,
            crop_size=size,
            seed=recipe.gen_seed,
            translator=translator,
        )

    def trained(translator: str) -> str:  # a synthetic-only model on the faces labelled by translator
        built = shards(translator)
        run = replace(
            spec,
            data=replace(
                spec.data, real_shards=str(built.real_shards), synthetic_shards=str(built.synthetic_shards)
            ),
        )
        info = train_once(run, f"synthetic-round{len(runs)}")
        took = "reused" if info["reused"] else f"{info['seconds']:.0f} s"
        val = info["metrics"].get("val_nme", float("nan"))
        print(f"pretraining run {info['name']}: {took}, validation NME {val:.2%}", flush=True)
        runs.append(info | {"generator_version": built.generator_version, "translator": translator})
        return info["checkpoint"]

    def chain_path(translator: str, model: str) -> Path:  # named by the run it is fitted on
        return work / "translators" / f"relabel-{Path(model).parent.name}-modes{recipe.relabel_modes}.npz"

    # "": the first round's labels are the generator-fitted translator's (build_inputs fits it)
    chain = relabel.rounds("", recipe.relabel_rounds, trained, chain_path, modes=recipe.relabel_modes)
    final = trained(chain[-1])
    info = {
        "checkpoint": final,
        "minutes": round((time.monotonic() - t0) / 60, 2),
        "runs": runs,
        "chain": [c for c in chain if c],
        "registered": {},
    }
    info["registered"] = register(info, recipe)
    return info


def register(info: dict, recipe: Recipe) -> dict:
    """Register the final run's checkpoint as `landmix-synthetic@best` where tracking is on and that run was
    tracked; once per run (its marker keeps the version). {} where nothing is registered."""
    from landmix import registry, tracking

    final = info["runs"][-1]
    uri = tracking.resolve_uri(recipe.spec.tracking.uri)
    if uri is None or not final.get("mlflow_run_id"):
        return {}
    marker = Path(final["checkpoint"]).parent / MARKER
    kept = json.loads(marker.read_text())
    if kept.get("registered", {}).get("tracking_uri") == uri:
        return kept["registered"]
    tags = {
        "generator_version": final.get("generator_version", ""),
        "translator_chain": [Path(c).name for c in info["chain"]],
        "n_generated": recipe.n_generated,
        "renders": list(recipe.renders),
        "relabel_rounds": recipe.relabel_rounds,
        "relabel_modes": recipe.relabel_modes,
        "pretraining_key": final["name"],
        "val_nme": final["metrics"].get("val_nme"),
        "test_nme": final["metrics"].get("test_nme"),
    }
    done = registry.register_model(uri, REGISTERED_NAME, final["mlflow_run_id"], tags=tags)
    kept["registered"] = done | {"tracking_uri": uri}
    marker.write_text(json.dumps(kept, indent=1))
    return kept["registered"]
