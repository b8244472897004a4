"""The inputs of a training run or sweep, built once: generate -> ingest -> prepare, cached by content.

    inputs = build_inputs(work=Path("out"), n_generated=4000, crop_size=112)
    inputs.real_shards, inputs.synthetic_shards      # folders of training-ready Parquet shards

Synthetic labels are translated to the human 300-W convention in the prepare step: by the translator
given, else by one fitted on the generated faces' paired conventions (x-ray -> annotator; cached under
`work/translators/`), else (no generated faces) by the fixed SYNTH70 -> IBUG68 table.

Real faces: a 300-W-layout folder (default: the shared faces, $LANDMIX_DATA_ROOT/300w). Synthetic
faces: the embedded procedural generator's output (`n_generated` faces) plus any FaceSynthetics-layout
folders given. Real shards are prepared first; the crop distribution fitted on them is then used to
sample the synthetic crops, so both sources are framed alike. Each step is skipped when its output
already exists for the same inputs (a `key.json` beside it records what it was built from).

Without the shared real faces (a laptop with no download), a stand-in "real" set is rendered by the
generator with the human-annotator labels, written in the 300-W layout; results on it are NOT results
on real faces, and the job says so.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmix import settings, translate
from landmix.config import prepared_real
from landmix.generate import generator_version
from landmix.generate.face3d import LOOK
from landmix.schemes import IBUG68, SYNTH70

GEN_SIZE = (
    160  # px of the generated faces unless a caller asks for another size (shards are keyed by it then)
)
STANDIN_WARNING = (
    "WARNING: no real 300-W faces found at {root}; using a generated stand-in with annotator-convention labels. "
    "Set LANDMIX_DATA_ROOT (or --real) to a 300-W folder for results on real faces."
)


@dataclass(frozen=True)
class Inputs:
    real_shards: Path  # prepared real faces (300-W), IBUG68
    synthetic_shards: Path  # prepared synthetic faces, labels translated to IBUG68
    real_manifest: Path
    synthetic_manifests: tuple[Path, ...]
    real_is_standin: bool  # True when no real faces were found and generated ones stand in
    translator: Path | None  # the .npz applied to synthetic labels; None = the fixed SYNTH70 -> IBUG68 table
    generator_version: str = ""  # the embedded generator's version that drew the generated faces ("" = none)


def _key(**parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _fresh(folder: Path, key: str) -> bool:
    marker = folder / "key.json"
    return marker.exists() and json.loads(marker.read_text()).get("key") == key


def _mark(folder: Path, key: str, **info) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_text(json.dumps({"key": key, **info}, indent=1, default=str))


def _ingest(source: str, root: Path, out: Path) -> Path:
    from landmix import manifest

    manifest_path = out / "manifest.parquet"
    key = _key(source=source, root=str(root.resolve()), files=len(os.listdir(root)) if root.is_dir() else 0)
    if not _fresh(out, key) or not manifest_path.exists():
        result = manifest.ingest(manifest.IngestConfig(source=source, root=root, out=manifest_path))
        print(
            f"ingest {root}: {result.table.num_rows} accepted, {len(result.rejected)} quarantined "
            f"({dict(result.reasons)}) -> {manifest_path}",
            flush=True,
        )
        _mark(out, key, root=root)
    return manifest_path


def _prepare(
    manifests: list[Path], out: Path, crop_size: int, crop_stats: str = "", translator: str = ""
) -> Path:
    from landmix import prepare

    key = _key(
        manifests=[(str(m), m.stat().st_mtime_ns) for m in manifests],
        crop_size=crop_size,
        crop_stats=crop_stats,
        translator=translator,
        crop_fit="train",  # the crop distribution fitted on the training pool only (prepare.crop_fit_ids)
    )
    shards = out / "shards"
    if not _fresh(out / "meta", key) or not shards.exists():
        summary = prepare.prepare(
            prepare.PrepareConfig(
                manifests=tuple(str(m) for m in manifests),
                out=str(shards),
                crop_size=crop_size,
                crop_stats=crop_stats,
                translator=translator,
            )
        )
        print(
            f"prepare -> {shards}: {summary['rows_written']} rows, {summary['quarantined']} quarantined",
            flush=True,
        )
        _mark(out / "meta", key)
    return shards / "shards"


def _generate(
    out: Path, n: int, size: int, seed: int, look: tuple[str, ...] = LOOK, pose: str = "wide"
) -> Path:
    from landmix.generate import FaceConfig, job

    job.generate(
        job.GenerateConfig(n=n, out=out, size=size, seed=seed, face=FaceConfig(look=look, pose=pose))
    )
    return out


def write_300w_standin(generated: Path, out: Path) -> Path:
    """Hard-link generated renders into a 300-W-layout folder with their annotator labels as 1-based .pts."""
    from landmix.sources import w300

    out.mkdir(parents=True, exist_ok=True)
    for ann in sorted(generated.glob("*_ldmks_annotator.txt")):
        stem = ann.name.removesuffix("_ldmks_annotator.txt")
        img, dst = generated / f"{stem}.png", out / f"{stem}.png"
        if not dst.exists():
            os.link(img, dst)
        pts = [[float(v) for v in line.split()] for line in ann.read_text().splitlines() if line.strip()]
        w300.write_pts(out / f"{stem}.pts", pts)
    return out


def build_inputs(
    work: Path,
    real_root: Path | None = None,
    synthetic_roots: list[Path] | None = None,
    n_generated: int = 4000,
    gen_size: int = GEN_SIZE,
    crop_size: int = 112,
    seed: int = 0,
    translator: str = "",
    look: tuple[str, ...] = LOOK,
    pose: str = "wide",
) -> Inputs:
    """Generate, ingest and prepare everything a sweep reads; cached under `work`. `look`: the generator's
    photographic steps (landmix.generate.look; the generated folder and its shards are keyed by them); `pose`: its
    head-pose spread (FaceConfig.pose; keyed too, when not the default)."""
    settings.require_ray("build_inputs")
    work = Path(work).resolve()
    real_shards, real_manifest, standin = build_real(
        work, real_root, crop_size, gen_size, seed, n_standin=max(400, n_generated // 4)
    )
    synth_manifests = []
    version = generator_version(look) + ("" if pose == "wide" else f"-pose-{pose}") if n_generated else ""
    if n_generated:  # keyed by the generator's version: a changed generator writes a new folder
        gen = _generate(
            work / "generated" / f"n{n_generated}-px{gen_size}-s{seed}-{version}",
            n_generated,
            gen_size,
            seed,
            look,
            pose,
        )
        synth_manifests.append(_ingest("facesynthetics", gen, work / "manifests" / gen.name))
    for root in synthetic_roots or []:
        name = "fs-" + _key(root=str(Path(root).resolve()))
        synth_manifests.append(_ingest("facesynthetics", Path(root), work / "manifests" / name))
    if not synth_manifests:
        raise ValueError("no synthetic faces: give n_generated > 0 or at least one FaceSynthetics folder")
    if not translator and n_generated:  # learn x-ray -> annotator on the generator's paired conventions
        translator = str(_fit_translator(synth_manifests[0], work / "translators"))
    crop_stats = prepared_real(work, crop_size) / "crop_distribution.json"
    # One folder per translator: shards labelled by a real-fitted chain sit beside the generator-fitted ones.
    label = translate.load_or_fixed(translator).version if translator else "fixed"
    # One per generator version, and per render size where it is not the default (the translator's fit alone
    # need not tell GEN_SIZE-px faces from larger ones)
    folder = (
        f"synthetic-{crop_size}-{label}"
        + (f"-{version}" if version else "")
        + (f"-px{gen_size}" if n_generated and gen_size != GEN_SIZE else "")
    )
    synth_shards = _prepare(
        synth_manifests,
        work / "prepared" / folder,
        crop_size,
        crop_stats=str(crop_stats),
        translator=translator,
    )
    return Inputs(
        real_shards,
        synth_shards,
        real_manifest,
        tuple(synth_manifests),
        standin,
        Path(translator) if translator else None,
        version,
    )


def build_real(
    work: Path,
    real_root: Path | None = None,
    crop_size: int = 160,
    gen_size: int = GEN_SIZE,
    seed: int = 0,
    n_standin: int = 1000,
) -> tuple[Path, Path, bool]:
    """Ingest and prepare the real faces alone (a real-only run needs nothing else), cached under `work`:
    (shards folder, manifest, whether a generated stand-in replaced missing real faces). Also writes the
    crop distribution fitted on their training pool (no validation or test face: `prepare.crop_fit_ids`)
    beside the shards (`crop_distribution.json`), which synthetic crops use."""
    settings.require_ray("build_real")
    work = Path(work).resolve()
    real_root = Path(real_root) if real_root else settings.data_root() / "300w"
    standin = not real_root.is_dir()
    if standin:
        print(STANDIN_WARNING.format(root=real_root), flush=True)
        gen = _generate(work / "generated" / f"standin-s{seed + 1000}", n_standin, gen_size, seed + 1000)
        real_root = write_300w_standin(gen, work / "standin_300w")
    manifest = _ingest("300w", real_root, work / "manifests" / "real")
    shards = _prepare([manifest], prepared_real(work, crop_size), crop_size)
    _write_crop_stats(shards, prepared_real(work, crop_size) / "crop_distribution.json")
    return shards, manifest, standin


def build_from_manifest(manifest: Path, work: Path, crop_size: int = 160) -> Path:
    """A manifest's faces (`landmix ingest`) prepared into shards under `work`, cached: the shards folder."""
    settings.require_ray("build_from_manifest")
    return _prepare([Path(manifest).resolve()], Path(work).resolve() / "prepared", crop_size)


def _fit_translator(generated_manifest: Path, out: Path) -> Path:
    """The ridge translator fitted on a generated manifest's paired labels, cached by that manifest."""
    path = (
        out
        / f"generated-{_key(manifest=str(generated_manifest), mtime=generated_manifest.stat().st_mtime_ns)}.npz"
    )
    if not path.exists():
        tr = fit_on_generated(generated_manifest)
        tr.save(path)
        print(
            f"translator {tr.version} (ridge alpha {tr.alpha:g}) fitted on {generated_manifest} -> {path}",
            flush=True,
        )
    return path


def fit_on_generated(manifest_path: str | Path, max_pairs: int = 2000, seed: int = 0) -> translate.Translator:
    """Fit SYNTH70 -> IBUG68 on the procedural generator's paired conventions in a `landmix ingest` manifest.

    Uses the rows that carry `landmarks_annotator` (the generator writes both conventions on every face),
    at most `max_pairs` of them (a seeded choice; the fit saturates long before 2000, see
    docs/results/prepare.md). Raises when the manifest has no such rows (FaceSynthetics' own renders).
    """
    import pyarrow.compute as pc

    from landmix.manifest import landmarks_array, read_manifest

    table = read_manifest(manifest_path)
    table = table.filter(pc.is_valid(table["landmarks_annotator"]))
    if table.num_rows < 5:
        raise ValueError(
            f"{manifest_path}: {table.num_rows} faces with annotator-convention labels; the fit needs"
            " at least 5 (generate faces with `landmix generate`, which writes both conventions)"
        )
    keep = np.sort(np.random.default_rng(seed).permutation(table.num_rows)[:max_pairs])
    table = table.take(keep)
    return translate.fit(
        landmarks_array(table["landmarks"]), landmarks_array(table["landmarks_annotator"]), SYNTH70, IBUG68
    )


def _write_crop_stats(real_shards: Path, path: Path) -> None:
    """The crop distribution the real prepare fitted (from its prepare.json), as CropDistribution JSON."""
    summary = json.loads((real_shards.parent / "prepare.json").read_text())
    path.write_text(json.dumps(summary["crop_distribution"], indent=1))
