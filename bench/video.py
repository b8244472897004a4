"""`landmix predict` on a video with known truth: jitter, NME and lag, with and without the One Euro filter.

    .venv/bin/python bench/video.py --checkpoint out/video-model/checkpoint
    .venv/bin/python bench/video.py --checkpoint CKPT --frames 60 --no-record      # a quick look, printed only
    .venv/bin/python bench/video.py --checkpoint CKPT --sweep-from TRACK.npz      # the sweep over a saved track
    .venv/bin/python bench/video.py --checkpoint CKPT --real --frames 150          # a real photo, moved

The clip is `landmix.clip`'s (one generated face turning its head from frontal to 35 degrees each way,
nodding, tilting and talking at 3 syllables a second; the generator's annotator labels, IBUG68, as each
frame's truth), written as .mp4 (mp4v) and read back through `landmix predict` (`landmix.video`: detection,
tracking, the filter), whose CSV holds each frame's raw and smoothed points. Figures, over the frames with a face:
- NME: the mean over frames of the mean point error / the truth's outer-eye-corner distance (`metrics.nme`);
- jitter: per point and frame, |(p_t - p_t-1) - (g_t - g_t-1)| / inter-ocular (g_t): the frame-to-frame
  displacement that the truth's own motion does not explain; the median (and the 90th percentile) over points
  and frames;
- lag: the time shift s (0.1-frame steps, the truth linearly interpolated in time) that minimises the mean
  distance between the points at t and the truth at t - s; the filter's lag is the smoothed points' shift less
  the raw points' (0 for a filter that adds none). "truth, filtered" is the filter run on the truth itself:
  the lag and error it adds with no detector noise at all.
A sweep of the filter's parameters over the same raw track (offline, `one_euro.smooth_track`, restarted at
each detection as the command restarts it) shows the trade-off the defaults sit on. Records go to
docs/results/video/records.jsonl; the page's tables: `python -m landmix.records render docs/results/video.md`.
`--real` runs a real photo instead: the largest of the model's 300-W test faces, moved by a slow similarity
(drift, scale, roll) as a clip, its labels moved the same way (experiment "real").
The annotated frames and one point's trace are written as PNGs to docs/results/video/.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from landmix import checkpoint, clip, crops, metrics, records, settings
from landmix.one_euro import OneEuroParams, smooth_track
from landmix.predict import Predictor
from landmix.schemes import IBUG68, interocular
from landmix.sources.faces import list_faces, split_faces
from landmix.video import predict_video

PICTURES = Path(__file__).resolve().parents[1] / "docs" / "results" / "video"
SWEEP = [(c, b) for c in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0) for b in (0.0, 1.0, 10.0, 30.0, 100.0)]  # (Hz, beta)


def read_track(csv_path, k: int = 68):
    """(status (T,), raw (T, K, 2), smoothed (T, K, 2)) from a video's CSV; NaN where no face."""
    rows = list(csv.DictReader(open(csv_path)))
    status = np.array([r["status"] for r in rows])
    raw, smooth = np.full((2, len(rows), k, 2), np.nan)
    for i, r in enumerate(rows):
        if r["x0"]:
            raw[i] = [[float(r[f"x{j}"]), float(r[f"y{j}"])] for j in range(k)]
            smooth[i] = [[float(r[f"sx{j}"]), float(r[f"sy{j}"])] for j in range(k)]
    return status, raw, smooth


SHIFTS = np.arange(-3, 8.01, 0.1)  # frames: the lags tried


def lag_frames(pts: np.ndarray, truth: np.ndarray, shifts=SHIFTS) -> float:
    """The shift s (frames) minimising the mean distance between pts[t] and truth[t - s] (interpolated)."""
    t = np.arange(len(truth))
    ok = ~np.isnan(pts).any(axis=(1, 2))
    flat = truth.reshape(len(truth), -1)
    best, err = 0.0, np.inf
    for s in shifts:
        ts = t - s
        inside = ok & (ts >= 0) & (ts <= t[-1])
        shifted = np.stack([np.interp(ts[inside], t, flat[:, j]) for j in range(flat.shape[1])], 1)
        e = np.linalg.norm(
            pts[inside].reshape(inside.sum(), -1, 2) - shifted.reshape(-1, *truth.shape[1:]), axis=-1
        )
        if e.mean() < err:
            best, err = float(s), e.mean()
    return best


def figures(pts: np.ndarray, truth: np.ndarray, fps: float, raw_lag: float | None = None) -> dict:
    ok = ~np.isnan(pts).any(axis=(1, 2))
    j = metrics.jitter(pts, truth)
    lag = lag_frames(pts, truth)
    out = {
        "nme": float(metrics.nme(pts[ok], truth[ok]).mean()),
        "jitter_median": float(np.median(j)),
        "jitter_p90": float(np.percentile(j, 90)),
        "lag_ms": 1000 * lag / fps,
    }
    if raw_lag is not None:
        out["added_lag_ms"] = 1000 * (lag - raw_lag) / fps
    return out


def offline(raw: np.ndarray, status: np.ndarray, fps: float, params: OneEuroParams) -> np.ndarray:
    """The filter over the raw track as the command runs it: restarted at each detection and after no face."""
    out = np.full_like(raw, np.nan)
    starts = [i for i, s in enumerate(status) if s == "detected"] + [len(raw)]
    times = np.arange(len(raw)) / fps
    for a, b in zip(starts, starts[1:]):
        seg = raw[a:b]
        scales = np.array([interocular(p, IBUG68) if not np.isnan(p).any() else 1.0 for p in seg])
        out[a:b] = smooth_track(seg, times[a:b], scales, params)
    return out


def stills(video: Path, frames: list[int], path: Path) -> None:
    """The annotated video's frames side by side (PNG)."""
    cap, got, i = cv2.VideoCapture(str(video)), {}, 0
    while True:
        ok, im = cap.read()
        if not ok:
            break
        if i in frames:
            got[i] = im
        i += 1
    cv2.imwrite(str(path), np.hstack([got[f] for f in frames if f in got]))


def trace(truth, raw, smooth, fps: float, point: int, path: Path) -> None:
    """One point's x over time: truth, raw, smoothed (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(truth)) / fps
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    ax.plot(t, truth[:, point, 0], "k-", lw=1.5, label="truth")
    ax.plot(t, raw[:, point, 0], "g-", lw=0.8, alpha=0.8, label="raw")
    ax.plot(t, smooth[:, point, 0], "r-", lw=1.0, label="One Euro")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"point {point} x (px)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def real_clip(meta: dict, path: Path, frames: int, fps: float, size: int) -> np.ndarray:
    """A clip of a real photo: the first of the model's 300-W test faces (largest first), its face moved by a
    slow similarity (drift 6 % of the frame, scale +-8 %, roll +-8 degrees) at `size` px; returns the truth,
    its 300-W labels moved the same way (T, 68, 2). No expression or 3D turn: a still face, re-sampled."""
    root = settings.data_root() / "300w"
    faces = split_faces(list_faces(root, "300w"), "test", checkpoint.data_config(meta))
    rel, pts = max(faces, key=lambda f: np.ptp(f[1][:, 0]))  # the largest face: the most pixels to move
    image = cv2.imread(str(root / rel), cv2.IMREAD_COLOR)
    x0, y0, x1, y1 = crops.landmark_box(pts)
    centre, side = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), 2.0 * max(x1 - x0, y1 - y0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    truth = []
    for i in range(frames):
        t = i / fps
        scale = size / side * (1 + 0.08 * np.sin(2 * np.pi * t / 4.0))
        m = cv2.getRotationMatrix2D(tuple(centre), 8 * np.sin(2 * np.pi * t / 3.0), scale)
        m[:, 2] += (
            (size - 1) / 2
            - centre
            + 0.06 * size * np.array([np.sin(np.pi * t / 2.5), np.cos(np.pi * t / 3.5)])
        )
        writer.write(
            cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        )
        truth.append(pts @ m[:, :2].T + m[:, 2])
    writer.release()
    return np.asarray(truth, np.float64)


def real(args, meta: dict, config: dict, params: OneEuroParams) -> None:
    """The real photo's clip through the command: raw and smoothed points against its moved labels."""
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "real.mp4"
        truth = real_clip(meta, video, args.frames, args.fps, args.size)
        result = predict_video(Predictor.load(args.checkpoint), video, Path(tmp) / "out", params)
        status, raw, smooth = read_track(Path(tmp) / "out" / "real_landmarks.csv")
        if not args.no_record:
            picks = [int(f * (args.frames - 1)) for f in (0.0, 0.33, 0.66, 1.0)]
            stills(Path(tmp) / "out" / "real_landmarks.mp4", picks, PICTURES / "real_frames.png")
    raw_lag = lag_frames(raw, truth)
    config = config | {
        "clip": {"frames": args.frames, "fps": args.fps, "size": args.size, "photo": "300-W test"}
    }
    for label, m in (
        ("raw", figures(raw, truth, args.fps)),
        ("One Euro (defaults)", figures(smooth, truth, args.fps, raw_lag)),
    ):
        print(f"real {label:22s} " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
        if not args.no_record:
            m |= {"frames": result["frames"], "counts": result["counts"]}
            records.write_record(records.new_record("video", "real", config, m, label=label))


def sweep(raw, truth, status, config: dict, args) -> None:
    """The filter's parameters over one raw track (offline), a record each."""
    raw_lag = lag_frames(raw, truth)
    for min_cutoff, beta in SWEEP:
        p = OneEuroParams(min_cutoff=min_cutoff, beta=beta)
        m = figures(offline(raw, status, args.fps, p), truth, args.fps, raw_lag)
        print(f"sweep {min_cutoff:4.1f} {beta:5.1f}  " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
        if not args.no_record:
            records.write_record(records.new_record("video", "sweep", config | {"filter": asdict(p)}, m))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-record", action="store_true", help="print the figures only")
    parser.add_argument(
        "--save-track",
        help="also save the raw track, statuses and truth as .npz (tests/data/video_track.npz)",
    )
    parser.add_argument("--save-frames", type=int, default=120, help="how many frames --save-track keeps")
    parser.add_argument("--real", action="store_true", help="a real 300-W test photo moved as a clip instead")
    parser.add_argument(
        "--sweep-from",
        help="only the parameter sweep, over a track a run saved (--save-track F --save-frames 240)",
    )
    args = parser.parse_args(argv)
    meta = checkpoint.read_meta(args.checkpoint)
    params = OneEuroParams()
    config = {
        "checkpoint": args.checkpoint,
        "checkpoint_test_nme": meta.get("metrics", {}).get("test_nme"),
        "image_size": meta.get("model", {}).get("image_size"),
        "clip": {
            "frames": args.frames,
            "fps": args.fps,
            "size": args.size,
            "seed": args.seed,
            "codec": "mp4v",
        }
        | asdict(clip.Motion()),
        "filter": asdict(params),
    }
    if args.real:
        real(args, meta, config, params)
        return 0
    if args.sweep_from:
        track = np.load(args.sweep_from)
        config["clip"]["frames"] = len(track["raw"])
        sweep(
            track["raw"].astype(np.float64), track["truth"].astype(np.float64), track["status"], config, args
        )
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "turn.mp4"
        truth = clip.make_clip(video, args.frames, args.fps, args.size, args.seed)["annotator"].astype(
            np.float64
        )
        predictor = Predictor.load(args.checkpoint)
        t0 = time.perf_counter()
        result = predict_video(predictor, video, Path(tmp) / "out", params)
        seconds = time.perf_counter() - t0
        status, raw, smooth = read_track(Path(tmp) / "out" / "turn_landmarks.csv")
        if not args.no_record:
            PICTURES.mkdir(parents=True, exist_ok=True)
            picks = [int(f * (args.frames - 1)) for f in (0.0, 0.2, 0.45, 0.7, 0.95)]
            stills(Path(tmp) / "out" / "turn_landmarks.mp4", picks, PICTURES / "frames.png")
            trace(truth, raw, smooth, args.fps, 8, PICTURES / "trace.png")
    if args.save_track:  # the first --save-frames frames: what tests/test_video.py smooths
        n = args.save_frames
        arrays = {
            "raw": raw[:n].astype(np.float32),
            "truth": truth[:n].astype(np.float32),
            "status": status[:n],
        }
        np.savez_compressed(args.save_track, fps=np.float64(args.fps), **arrays)
    raw_lag = lag_frames(raw, truth)
    rows = {
        "raw": figures(raw, truth, args.fps),
        "One Euro (defaults)": figures(smooth, truth, args.fps, raw_lag),
        "truth, filtered": figures(
            offline(truth, np.where(np.arange(len(truth)) == 0, "detected", "tracked"), args.fps, params),
            truth,
            args.fps,
            0.0,
        ),
    }
    common = {
        "frames": result["frames"],
        "counts": result["counts"],
        "seconds": seconds,
        "frames_per_s": result["frames"] / seconds,
    }
    for label, m in rows.items():
        print(f"{label:22s} " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
        if not args.no_record:
            records.write_record(records.new_record("video", "clip", config, m | common, label=label))
    sweep(raw, truth, status, config, args)
    print(f"{result['frames']} frames in {seconds:.1f} s: {result['counts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
