"""The visual domain gap, measured without training a landmark model: can a small classifier tell a
source's face crops from real ones, and how do their image statistics differ?

    landmix gap --out out/gap                  # generated faces (every step) and the FaceSynthetics renders vs real
    landmix gap --sources generated --look --n 100 --repeats 3 --out out/gap-flat  # the flat drawing, 3 repeats

Every source is cut the same way (`face_crops`): a square around the INNER points (brows, eyes, nose,
mouth; the same in the x-ray and annotator conventions, so the jaw convention cannot frame the crop
differently), with a small seeded jitter, resized to `size` pixels. The classifier recipe is fixed
(landmix.gap_classifier): a 4-block CNN trained from scratch on `n` crops per class, k-fold cross-validated
so every crop is scored by a model that never saw it, repeated on fresh draws. Its held-out accuracy is
the gap: 50 % = indistinguishable. `accuracy_synthetic` is the share of the source's crops called synthetic,
the figure the generator must bring down to the FaceSynthetics renders' (the calibration: photoreal renders
against the same real faces). The statistics (`image_stats`) say where the difference lies: colour,
contrast, the slope of the power spectrum (natural photos ~ -2), noise and sharpness.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from landmix import settings
from landmix.crops import box_for, crop_image
from landmix.gap_classifier import ClassifierRecipe, classify, summarise
from landmix.generate import job
from landmix.generate.face3d import LOOK, POSES
from landmix.schemes import IBUG68

SOURCES = ("generated", "facesynthetics")  # what `landmix gap` can compare with the real faces

INNER = [i for i in range(IBUG68.num_points) if i not in IBUG68.groups["jaw"]]  # brows, nose, eyes, mouth
CROP_SCALE = 1.9  # crop side / long side of the inner points' box: the whole face and a little around it


def face_crops(images, points, size: int, seed: int, jitter: float = 0.05) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB crops of faces: images is a sequence of (H, W, 3) uint8 RGB arrays
    (greyscale is repeated to 3 channels), points (N, >=68, 2) pixels in iBUG order."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, (img, pts) in enumerate(zip(images, points)):
        if img.ndim == 2 or img.shape[2] == 1:
            img = np.repeat(img.reshape(*img.shape[:2], 1), 3, axis=2)
        scale, dx, dy = CROP_SCALE * (1 + rng.uniform(-jitter, jitter)), *rng.uniform(-jitter, jitter, 2)
        out[i] = crop_image(
            img, np.asarray(pts)[INNER], box_for(np.asarray(pts)[INNER], scale, dx, dy), size
        )[0]
    return out


# ------------------------------------------------------------------------------------------------ sources
def _read_rgb(root: str, rel: str) -> np.ndarray:
    """One face's image as predict reads a photo (`landmix.photos`: EXIF orientation, CMYK, 16-bit); an error
    naming the file and why where it cannot be read."""
    from landmix.photos import read_photo

    return read_photo(Path(root) / rel)


def _usable(items: list[dict], root) -> list[dict]:
    """The listed faces of a folder; a folder where some cannot be used (no image beside a .pts, ...) is refused
    in one line: a gap measured on a silently thinned draw is not the folder's."""
    bad = [i for i in items if i["problem"]]
    if bad:
        b = bad[0]
        raise ValueError(
            f"{root}: {len(bad)} of {len(items)} faces cannot be used, e.g. {b['problem_path']}: "
            f"{b['problem']}: {b['problem_detail']}"
        )
    return items


def real_crops(root: Path, n: int, size: int, seed: int) -> np.ndarray:
    """n real 300-W faces (a seeded draw of the folder's labelled faces) as crops."""
    from landmix.sources import w300

    items = _usable(w300.list_samples(str(root))[0], root)
    if len(items) < n:
        raise ValueError(f"{root}: {len(items)} labelled 300-W faces, fewer than --n {n}; lower --n")
    pick = [items[i] for i in np.random.default_rng(seed).choice(len(items), n, replace=False)]
    images = [_read_rgb(str(root), i["image_path"]) for i in pick]
    points = [w300.read_pts(Path(root) / i["landmarks_path"]) for i in pick]
    return face_crops(images, points, size, seed)


def facesynthetics_crops(root: Path, n: int, size: int, seed: int) -> np.ndarray:
    """n FaceSynthetics renders (a seeded draw; all of them when the folder holds exactly n) as crops."""
    from landmix.sources import facesynthetics

    items = _usable(facesynthetics.list_samples(str(root))[0], root)
    if len(items) < n:
        raise ValueError(f"{root}: {len(items)} FaceSynthetics renders, fewer than --n {n}; lower --n")
    pick = [items[i] for i in np.random.default_rng(seed).choice(len(items), n, replace=False)]
    rows = [facesynthetics.read_sample(str(root), i) for i in pick]
    return face_crops(
        [_read_rgb(str(root), r["image_path"]) for r in rows], [r["landmarks"] for r in rows], size, seed
    )


def generated_crops(
    n: int,
    size: int,
    seed: int,
    gen_size: int = 160,
    first: int = 0,
    look: tuple[str, ...] = LOOK,
    pose: str = "wide",
) -> np.ndarray:
    """n faces of the embedded generator (ids first .. first + n - 1 of `seed`, drawn at gen_size px with the
    given look and pose spread, as `landmix generate` and the jobs draw them) as crops."""
    from landmix.generate import FaceConfig, make_sample

    face = FaceConfig(look=look, pose=pose)
    samples = [make_sample(seed, first + i, gen_size, face) for i in range(n)]
    return face_crops([s.image for s in samples], [s.annotator for s in samples], size, seed)


def source_crops(name: str, n: int, size: int, seed: int, repeat: int, cfg: GapConfig) -> np.ndarray:
    """Repeat `repeat` of a source: fresh generated faces and a fresh real draw each repeat."""
    if name == "generated":
        return generated_crops(
            n, size, cfg.generator_seed, cfg.gen_size, first=repeat * n, look=cfg.look, pose=cfg.pose
        )
    if name == "facesynthetics":
        return facesynthetics_crops(cfg.facesynthetics, n, size, seed + repeat)
    raise ValueError(f"unknown source {name!r}; choose from {SOURCES}")


# ------------------------------------------------------------------------------------------------ the job
@dataclass(frozen=True)
class GapConfig:
    """What `landmix gap` compares with the real faces, and how."""

    out: Path  # folder for gap.json, gap.md, gap.png
    sources: tuple[str, ...] = SOURCES
    real: Path = Path()  # a 300-W folder; default: the shared faces ($LANDMIX_DATA_ROOT/300w)
    # default: the shared FaceSynthetics renders ($LANDMIX_DATA_ROOT/facesynthetics_100)
    facesynthetics: Path = Path()
    n: int = 100  # crops per class in each repeat (the 100 shared FaceSynthetics renders set the default)
    repeats: int = 2  # fresh real draws (and fresh generated faces) per repeat; the figures pool them
    size: int = 112  # crop side in pixels
    gen_size: int = 160  # the generator's image size (the jobs' default)
    look: tuple[str, ...] = LOOK  # the generator's photographic steps (landmix.generate.look.STEPS)
    pose: str = "wide"  # the generator's head-pose spread (FaceConfig.pose)
    generator_seed: int = 0
    seed: int = 0
    recipe: ClassifierRecipe = ClassifierRecipe()

    def __post_init__(self):
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise ValueError(f"GapConfig.sources={self.sources}: choose one or more of {SOURCES}")
        if self.n < 2 * self.recipe.folds or self.repeats < 1:
            raise ValueError(f"GapConfig: n={self.n} must be >= {2 * self.recipe.folds} and repeats >= 1")
        if not 32 <= self.size <= 256:
            raise ValueError(f"GapConfig.size={self.size}: use 32..256 px")


def measure(cfg: GapConfig) -> dict:
    """Classify every source against real faces (`repeats` x k-fold) and compute both sides' statistics.
    Writes gap.json, gap.md and gap.png under cfg.out; returns the gap.json content."""
    import torch

    from landmix import image_stats
    from landmix.generate import generator_version

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    real_root = cfg.real if str(cfg.real) not in ("", ".") else settings.data_root() / "300w"
    if not Path(real_root).is_dir():
        raise FileNotFoundError(f"{real_root}: no real 300-W faces; set LANDMIX_DATA_ROOT or --real")
    if "facesynthetics" in cfg.sources and str(cfg.facesynthetics) in ("", "."):
        cfg = replace(cfg, facesynthetics=settings.data_root() / "facesynthetics_100")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "generator_version": generator_version(cfg.look),
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        "sources": {},
    }
    crops = {}
    for name in cfg.sources:
        runs = []
        for r in range(cfg.repeats):
            real = real_crops(Path(real_root), cfg.n, cfg.size, cfg.seed * 1000 + r)
            synth = source_crops(name, cfg.n, cfg.size, cfg.seed * 1000 + r, r, cfg)
            runs.append(classify(real, synth, cfg.recipe, seed=cfg.seed * 1000 + r))
            if r == 0:
                crops.setdefault("real", real)
                crops[name] = synth
            print(
                f"gap {name} repeat {r}: accuracy {runs[-1]['accuracy']:.3f} (synthetic "
                f"{runs[-1]['accuracy_synthetic']:.3f}), AUC {runs[-1]['auc']:.3f}",
                flush=True,
            )
        result["sources"][name] = {
            **summarise(runs),
            "runs": [{k: v for k, v in r.items() if k not in ("prob", "label")} for r in runs],
        }
    stats = {name: image_stats.image_stats(c) for name, c in crops.items()}
    result["stats"] = {name: {k: float(np.median(v)) for k, v in s.items()} for name, s in stats.items()}
    image_stats.plot(crops, stats, out / "gap.png")
    (out / "gap.json").write_text(json.dumps(result, indent=1))
    (out / "gap.md").write_text(to_markdown(result) + "\n\n" + image_stats.stats_table(stats) + "\n")
    return result


def to_markdown(result: dict) -> str:
    """The classifier table: one row per source."""
    look = ", ".join(result["config"]["look"]) or "flat"
    rows = [
        f"Generator {result['generator_version']} (look: {look}); {result['config']['n']} crops per class x "
        f"{result['config']['repeats']} repeats, {result['config']['recipe']['folds']}-fold, "
        f"{result['config']['size']} px. 50 % = indistinguishable from the real faces.",
        "",
        "| source | accuracy | on synthetic crops | on real crops | AUC |",
        "|---|---|---|---|---|",
    ]

    def ci(s: dict, k: str) -> str:
        return f"{100 * s[k]:.1f} % [{100 * s[k + '_ci'][0]:.0f}, {100 * s[k + '_ci'][1]:.0f}]"

    for name, s in result["sources"].items():
        rows.append(
            f"| {name} | {ci(s, 'accuracy')} | {ci(s, 'accuracy_synthetic')} | {ci(s, 'accuracy_real')} | "
            f"{s['auc']:.3f} |"
        )
    return "\n".join(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = GapConfig(out=Path())
    parser.add_argument("--out", required=True, type=Path, help="folder for gap.json, gap.md and gap.png")
    parser.add_argument("--sources", nargs="+", default=list(d.sources), choices=SOURCES)
    parser.add_argument("--real", type=Path, default=d.real, help="300-W folder (default: the shared faces)")
    parser.add_argument(
        "--facesynthetics",
        type=Path,
        default=d.facesynthetics,
        help="FaceSynthetics folder (default: the shared 100 renders)",
    )
    parser.add_argument("--n", type=int, default=d.n, help="crops per class per repeat")
    parser.add_argument("--repeats", type=int, default=d.repeats)
    parser.add_argument("--size", type=int, default=d.size, help="crop side, px")
    parser.add_argument("--gen-size", type=int, default=d.gen_size, help="generated image side, px")
    job.add_look_argument(parser)
    parser.add_argument("--pose", choices=POSES, default=d.pose, help="the generator's head-pose spread")
    parser.add_argument("--seed", type=int, default=d.seed)


def run(args: argparse.Namespace) -> int:
    cfg = GapConfig(
        out=args.out,
        sources=tuple(args.sources),
        real=args.real,
        facesynthetics=args.facesynthetics,
        n=args.n,
        repeats=args.repeats,
        size=args.size,
        gen_size=args.gen_size,
        look=tuple(args.look),
        pose=args.pose,
        seed=args.seed,
    )
    result = measure(cfg)
    print(to_markdown(result))
    print(f"wrote {cfg.out}/gap.json, gap.md, gap.png")
    return 0
