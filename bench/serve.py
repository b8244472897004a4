"""`landmix serve` under load: requests/s and latency over HTTP on loopback, and its two parts apart.

    .venv/bin/python bench/serve.py                                    # untrained real-baseline model
    .venv/bin/python bench/serve.py --checkpoint out/real/checkpoint --clients 8 --seconds 30

Photos: --photos real 300-W photos (every k-th of the shared 300w/ folder, sorted). Four experiments, each a
record of docs/results/serve/records.jsonl (page "serve"; --no-record: print only):
- `detector`: dlib's face detector alone (`detect.detect_faces`), photos/s, one thread;
- `model`: the landmark model alone on the detector's faces (`predict.landmarks_of`: the passes, each a flip-
  averaged model run), faces/s with torch on one thread, one face per call and all faces in one call;
- `http`: the Serve application (one replica, --threads 1) with --clients concurrent clients posting the
  photos in turn for --seconds: requests/s, p50/p99 latency, errors (any answer but 200), with --max-batch 1
  (no batching) and --max-batch 8;
- `overload`: 4 x --clients clients against --max-ongoing 8 --max-queued 4, for a quarter of --seconds: the
  share Serve answers 503 at once (back-pressure) and that no answer is anything but 200 or 503.

The model's speed does not depend on its weights, so without --checkpoint an untrained model of the
real-baseline preset's architecture (160 px) is served from a temporary folder. On the cluster, point the
same script at the head's Ray (RAY_ADDRESS=auto) on a node that is not training.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from landmix import detect, mlflow_server, photos, predict, records, serve, settings


def pick_photos(n: int) -> list[Path]:
    every = sorted((settings.data_root() / "300w").rglob("*.jpg")) + sorted(
        (settings.data_root() / "300w").rglob("*.png")
    )
    return every[:: max(1, len(every) // n)][:n]


def untrained_checkpoint(folder: Path) -> Path:
    import torch

    from landmix import checkpoint, presets
    from landmix.models import create_model

    spec = presets.real_baseline()
    model = create_model(spec.model)
    folder.mkdir(parents=True, exist_ok=True)
    resume = {"model": model.state_dict(), "optimizer": {}, "epoch": 0}
    checkpoint.save(str(folder), model.state_dict(), resume, spec, epoch=0)
    torch.set_num_threads(1)
    return folder


def parts(predictor: predict.Predictor, images: list[np.ndarray]) -> dict:
    """Detector photos/s; model faces/s one face per call and all in one call (torch on one thread)."""
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    found = [detect.detect_faces(im) for im in images]
    detector_s = time.perf_counter() - t0
    scale = predictor.model.cfg.crop_scale
    faces = [
        (im, predictor.calibration.model_box(b, scale)) for im, boxes in zip(images, found) for b in boxes
    ]
    predict.landmarks_of(predictor.model, faces[:1], predictor.passes)  # warm up
    t0 = time.perf_counter()
    for face in faces:
        predict.landmarks_of(predictor.model, [face], predictor.passes)
    one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    predict.landmarks_of(predictor.model, faces, predictor.passes)
    all_s = time.perf_counter() - t0
    pixels = float(np.mean([im.shape[0] * im.shape[1] for im in images]))
    return {
        "detector": {
            "photos": len(images),
            "mean_megapixels": pixels / 1e6,
            "photos_per_s": len(images) / detector_s,
        },
        "model": {
            "faces": len(faces),
            "faces_per_s_one_per_call": len(faces) / one_s,
            "faces_per_s_all_in_one_call": len(faces) / all_s,
        },
    }


def load(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """clients threads posting bodies in turn for seconds; requests/s, latency percentiles, status counts."""
    results: list[tuple[float, int]] = []
    end = time.monotonic() + seconds

    def client(k: int) -> None:
        i = k
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, data=bodies[i % len(bodies)]), timeout=60
                ) as r:
                    r.read()
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                status = 0  # connection refused or reset
            results.append((time.perf_counter() - t0, status))
            i += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = np.array([s for s, status in results if status == 200])
    refused = np.array([s for s, status in results if status == 503])
    statuses: dict[str, int] = {}
    for _, status in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "requests": len(results),
        "requests_per_s": len(results) / wall,
        "ok_per_s": len(ok) / wall,
        "p50_s": float(np.percentile(ok, 50)) if len(ok) else None,
        "p99_s": float(np.percentile(ok, 99)) if len(ok) else None,
        "errors": len(results) - len(ok),
        "refused_p50_s": float(np.percentile(refused, 50)) if len(refused) else None,
        "other_errors": len(results) - len(ok) - len(refused),
        "statuses": statuses,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--checkpoint", default=None, help="a checkpoint folder (default: untrained real-baseline)"
    )
    p.add_argument("--photos", type=int, default=16)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--no-record", action="store_true")
    a = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="bench-serve-")
    folder = Path(a.checkpoint) if a.checkpoint else untrained_checkpoint(Path(tmp) / "checkpoint")
    files = pick_photos(a.photos)
    bodies = [f.read_bytes() for f in files]
    predictor = predict.Predictor.load(folder)
    base = {
        "checkpoint": a.checkpoint or "untrained real-baseline (160 px)",
        "image_size": predictor.model.cfg.image_size,
        "passes": predictor.passes,
        "photos": [str(f.relative_to(settings.data_root())) for f in files],
    }

    def keep(experiment: str, config: dict, metrics: dict, label: str) -> None:
        rec = records.new_record("serve", experiment, base | config, metrics, label=label)
        print(label, metrics)
        if not a.no_record:
            print(f"-> {records.write_record(rec)}")

    measured = parts(predictor, [photos.decode(b) for b in bodies])
    keep("detector", {"threads": 1}, measured["detector"], "face detector alone")
    keep("model", {"threads": 1}, measured["model"], "landmark model alone")

    settings.init_ray()
    port = mlflow_server.free_port()
    runs = [
        ("http", "no batching", ["--max-batch", "1"], a.clients, a.seconds),
        ("http", "batches of up to 8", ["--max-batch", "8"], a.clients, a.seconds),
        (
            "overload",
            "max-ongoing 8, max-queued 4",
            ["--max-ongoing", "8", "--max-queued", "4"],
            4 * a.clients,
            a.seconds / 4,
        ),
    ]
    for experiment, label, flags, clients, seconds in runs:
        parser = argparse.ArgumentParser()
        serve.add_arguments(parser)
        args = parser.parse_args(["--model", str(folder), "--port", str(port), *flags])
        serve.deploy(serve.model_config(args.model), args)
        url = f"http://127.0.0.1:{port}/landmarks"
        load(url, bodies[:1], 1, 1.0)  # the first requests through the proxy
        config = {
            "clients": clients,
            "seconds": seconds,
            "flags": flags,
            "threads": args.threads,
            "replicas": 1,
        }
        keep(experiment, config, load(url, bodies, clients, seconds), label)
    serve.serve.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
