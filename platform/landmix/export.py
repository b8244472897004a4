"""`landmix export`: a checkpoint as one ONNX file that carries its preprocessing contract.

    landmix export --checkpoint out/real/checkpoint --out out/real/model.onnx
    MLFLOW_TRACKING_URI=http://head:5000 landmix export --checkpoint models:/landmix-study.real_only@best --out model.onnx
    landmix export --checkpoint CKPT --out model.onnx --flip         # flip averaging inside the graph (2 passes)
    landmix export --checkpoint CKPT --out model.onnx --no-parity    # no 300-W faces at hand: skip the check

The graph is the network and its read-out: `images` (N, 3, S, S) float32 RGB in [0, 1] (uint8 / 255; the
graph normalises by itself) -> `points` (N, K, 2) float32, crop pixels (0-based pixel centres), N dynamic.
By default it is one un-flipped pass, `checkpoint.predict(model, crops, flip=False)`; `--flip` puts the
mirror pass and its average in the graph, `checkpoint.predict(model, crops)` as eval scores it, at twice the
compute. Without it a caller can average itself: the metadata holds the flip permutation and the recipe.
Everything else a caller needs is the ONNX file's metadata (`metadata_props`, each value JSON): the input
(name, dtype, layout, channels, size, scale, mean, std), the crop (crop_scale x the landmark box's long
side, centred on it; `crops.input_crop`), the point scheme, its size and flip permutation, the detector-box
calibration (`detect.BoxCalibration`: from a dlib box to the crop), the head and backbone, and provenance
(landmix version and commit, the checkpoint, its weights' sha256, epoch and metrics). Read it back:

    contract = read_contract("model.onnx")                        # {key: value}
    session = onnxruntime.InferenceSession("model.onnx")
    pts = onnx_predict(session, crops)                            # (N, S, S, 3) uint8 crops -> (N, K, 2)

Parity: after writing, the command runs onnxruntime and PyTorch on the 300-W test faces' crops of the run's
own split ($LANDMIX_DATA_ROOT/300w) and prints the largest point difference in pixels (exit 1 above
PARITY_TOLERANCE_PX). `bench/export.py` measures latency against PyTorch (docs/results/export.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

import landmix
from landmix import checkpoint, crops, detect, records, registry, settings
from landmix.schemes import IBUG68, Scheme
from landmix.sources.faces import list_faces, split_faces

INPUT, OUTPUT = "images", "points"
PARITY_TOLERANCE_PX = 0.05  # largest |onnxruntime - PyTorch| point difference accepted, crop pixels


class Graph(nn.Module):
    """What is exported: images (N, 3, S, S) float32 in [0, 1] -> points (N, K, 2) float32, crop pixels;
    with flip_perm, averaged with the mirrored crop's points flipped back (as `checkpoint.predict`)."""

    def __init__(self, net: nn.Module, flip_perm: tuple[int, ...] | None = None):
        super().__init__()
        self.net = getattr(net, "module", net).eval()
        self.flip = flip_perm is not None
        self.register_buffer("perm", torch.as_tensor(flip_perm or [0], dtype=torch.long), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pts = self.net(images).pts.float()
        if not self.flip:
            return pts
        mirrored = self.net(images.flip(-1)).pts.float()[:, self.perm]  # (N, K, 2) of the mirror image
        back = torch.stack([images.shape[-1] - 1 - mirrored[..., 0], mirrored[..., 1]], -1)
        return (pts + back) / 2


def contract(
    model, meta: dict, folder, source: str, calibration, flip: bool, scheme: Scheme = IBUG68
) -> dict:
    """The metadata a caller needs besides the graph (module docstring), as {key: JSON-able value}."""
    cfg = model.cfg
    return {
        "input_name": INPUT,
        "input_dtype": "float32",
        "input_layout": "NCHW",
        "input_channels": "RGB",
        "input_size": cfg.image_size,  # S: the crop is S x S pixels
        "input_scale": 1 / 255,  # x = uint8 pixel * input_scale, then (x - mean) / std: [0, 1] as is
        "input_mean": [0.0, 0.0, 0.0],
        "input_std": [1.0, 1.0, 1.0],
        "output_name": OUTPUT,
        "output": "(N, K, 2) float32 x, y in crop pixels, 0-based pixel centres",
        "crop_scale": cfg.crop_scale,
        "crop": "square of crop_scale x the landmark box's long side, centred on the box, resized to S "
        "(area when shrinking, bilinear when enlarging), zero-padded; u = (x - x0 + 0.5) * S / side - 0.5",
        "scheme": scheme.name,
        "num_points": scheme.num_points,
        "flip_perm": list(scheme.flip_perm),
        "flip_in_graph": flip,
        "flip_averaging": "(f(x) + m) / 2 where m = f(x[..., ::-1]) (the NCHW input's columns reversed) "
        "re-indexed m[:, flip_perm] and its x replaced by S - 1 - x",
        "detector_calibration": asdict(calibration),
        "head": cfg.head,
        "backbone": cfg.backbone,
        "landmix_version": landmix.__version__,
        "landmix_commit": records.git_commit(),
        "checkpoint": source,
        "checkpoint_sha256": hashlib.sha256(Path(folder, checkpoint.MODEL_FILE).read_bytes()).hexdigest(),
        "checkpoint_run": meta["config"].get("train", {}).get("name"),
        "checkpoint_epoch": meta.get("best_epoch", meta.get("epoch")),
        "checkpoint_metrics": meta.get("metrics", {}),
    }


def export(model, path, metadata: dict, flip: bool = False, scheme: Scheme = IBUG68) -> Path:
    """Write model's Graph to path as ONNX with a dynamic batch axis and `metadata` as metadata_props."""
    import onnx

    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)  # torchvision
    graph = Graph(model, scheme.flip_perm if flip else None).eval()
    size = model.cfg.image_size
    example = torch.rand(2, 3, size, size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(
        graph,
        (example,),
        dynamo=True,
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        verbose=False,
    )
    proto = program.model_proto
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, str(path))  # one file: the weights inline
    return path


def read_contract(path) -> dict:
    """The metadata of an exported file, {key: value} (each value JSON-decoded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in model.metadata_props}


def session(path, threads: int = 0):
    """An onnxruntime CPU session on path; threads > 0 caps its intra-op threads (0: onnxruntime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_predict(sess, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """images (N, S, S, 3) uint8 RGB crops -> points (N, K, 2) float32, crop pixels, through a session."""
    out = []
    for i in range(0, len(images), batch):
        x = np.ascontiguousarray(images[i : i + batch].transpose(0, 3, 1, 2), np.float32) / np.float32(255)
        out.append(sess.run([OUTPUT], {INPUT: x})[0])
    return np.concatenate(out)


def real_crops(meta: dict, size: int, crop_scale: float, limit: int = 0) -> np.ndarray:
    """The model-input crops (N, S, S, 3) uint8 of the run's 300-W test faces ($LANDMIX_DATA_ROOT/300w), as
    eval cuts them; the first `limit` (0: all)."""
    root = settings.data_root() / "300w"
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no 300-W faces for the parity check; set LANDMIX_DATA_ROOT or pass --no-parity"
        )
    faces = split_faces(list_faces(root, "300w"), "test", checkpoint.data_config(meta))
    out = []
    for rel, pts in faces[: limit or None]:
        image = cv2.imread(str(root / rel), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{root / rel}: OpenCV cannot decode this image")
        out.append(crops.input_crop(image[:, :, ::-1], pts, crop_scale, size)[0])
    return np.stack(out)


def parity(model, path, images: np.ndarray, flip: bool = False, threads: int = 0) -> dict:
    """onnxruntime against `checkpoint.predict` (the same flip) on crops (N, S, S, 3) uint8: the largest and
    mean point difference in crop pixels, and whether the largest is within PARITY_TOLERANCE_PX."""
    ref = checkpoint.predict(model, images, flip=flip)
    got = onnx_predict(session(path, threads), images)
    diff = np.linalg.norm(got.astype(np.float64) - ref, axis=-1)  # (N, K) px
    return {
        "faces": len(images),
        "max_px": float(diff.max()),
        "mean_px": float(diff.mean()),
        "tolerance_px": PARITY_TOLERANCE_PX,
        "ok": bool(diff.max() <= PARITY_TOLERANCE_PX),
    }


def add_arguments(parser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint folder (OUT/checkpoint of landmix train) or models:/NAME@ALIAS of the registry "
        "at $MLFLOW_TRACKING_URI",
    )
    parser.add_argument("--out", required=True, help="the ONNX file to write (e.g. model.onnx)")
    parser.add_argument(
        "--flip",
        action="store_true",
        help="average with the mirrored crop inside the graph (as eval scores; 2x the compute)",
    )
    parser.add_argument(
        "--calibration",
        default=str(detect.CALIBRATION_FILE),
        help="detector-box calibration JSON written into the metadata (default: the package's)",
    )
    parser.add_argument(
        "--parity-faces", type=int, default=0, help="300-W test faces for the parity check (0: all of them)"
    )
    parser.add_argument("--no-parity", action="store_true", help="skip the parity check (no 300-W at hand)")


def run(args) -> int:
    calibration = detect.BoxCalibration.load(args.calibration)
    with tempfile.TemporaryDirectory(prefix="landmix-export-") as tmp:
        folder = registry.checkpoint_folder(args.checkpoint, tmp)
        model, meta = checkpoint.load(folder)
        if model.cfg.num_points != IBUG68.num_points:
            raise ValueError(f"{args.checkpoint}: {model.cfg.num_points} points; export knows IBUG68 (68)")
        metadata = contract(model, meta, folder, args.checkpoint, calibration, args.flip)
    path = export(model, args.out, metadata, flip=args.flip)
    result = {"out": str(path.resolve()), "bytes": path.stat().st_size, "flip_in_graph": args.flip}
    if not args.no_parity:
        images = real_crops(meta, model.cfg.image_size, model.cfg.crop_scale, args.parity_faces)
        result["parity"] = parity(model, path, images, flip=args.flip)
    print(json.dumps(result, indent=1))
    if "parity" in result and not result["parity"]["ok"]:
        print(
            f"landmix export: onnxruntime differs from PyTorch by {result['parity']['max_px']:.4f} px "
            f"(> {PARITY_TOLERANCE_PX} px); the file is written, but do not ship it",
            file=sys.stderr,
        )
        return 1
    return 0
