"""`landmix predict` on many photos: the one-process loop against the Ray Data path, photos/s and peak memory.

    .venv/bin/python bench/predict_batch.py                                  # 200 photos, 3 repeats, 10x memory
    .venv/bin/python bench/predict_batch.py --photos 40 --repeats 1 --scale 2 --no-record   # a quick look

Photos: --photos of the shared 300-W photos (every k-th of 300w/, sorted), linked into a temporary folder.
Model: an untrained model of the real-baseline preset's architecture (160 px; speed does not depend on the
weights) or --checkpoint; 3 passes, flip averaging, as `landmix predict`. Each run is a record of
docs/results/predict/records.jsonl (page "predict"; --no-record: print only):
- `throughput`: the same photos through
  - the loop: `predict.predict_photos`, what `landmix predict` runs (it also draws a picture per face),
    with torch's default threads (one per core) and on one thread (as each actor runs it),
  - the Ray Data path: `predict_batch.predict_on_ray` with --pts (the .pts files, no pictures), 1 and 2
    actors of one CPU each, on a local Ray of this machine's CPUs started once (each run starts its actors:
    model loading is in the time);
  photos/s end to end, the median of --repeats runs;
- `memory`: the Ray Data path with 2 actors on the photos and on --scale x as many (the same files linked
  --scale times): peak resident memory (RSS, sampled every 0.2 s) of the driver, of Ray's worker processes
  (the actors; `ray::` processes) and of the whole process tree (with Ray's own servers), and photos/s.
On a loaded machine give --loop-threads 1: there the loop on torch's default threads can take minutes per 40
photos (docs/results/predict.md says why). --scale 0 skips the memory runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from landmix import predict, predict_batch, records, settings


def pick_photos(n: int) -> list[Path]:
    every = sorted((settings.data_root() / "300w").rglob("*.jpg")) + sorted(
        (settings.data_root() / "300w").rglob("*.png")
    )
    return every[:: max(1, len(every) // n)][:n]


def linked(files: list[Path], folder: Path, copies: int) -> list[Path]:
    """copies x files as symbolic links under folder (copy k of a photo named <k>_<name>)."""
    folder.mkdir(parents=True)
    out = []
    for k in range(copies):
        for f in files:
            link = folder / f"{k}_{f.parent.name}_{f.name}"
            link.symlink_to(f.resolve())
            out.append(link)
    return out


def untrained_checkpoint(folder: Path) -> Path:
    from landmix import checkpoint, presets
    from landmix.models import create_model

    spec = presets.real_baseline()
    model = create_model(spec.model)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint.save(
        str(folder),
        model.state_dict(),
        {"model": model.state_dict(), "optimizer": {}, "epoch": 0},
        spec,
        epoch=0,
    )
    return folder


class PeakMemory:
    """Peak RSS (bytes) of this process, of its `ray::` worker descendants, and of its whole tree."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak = every, {"driver": 0, "workers": 0, "tree": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            driver, workers, tree = me.memory_info().rss, 0, me.memory_info().rss
            for p in me.children(recursive=True):
                try:
                    rss, name = p.memory_info().rss, p.name()
                except psutil.Error:
                    continue
                tree += rss
                workers += rss if name.startswith("ray::") else 0
            for key, value in (("driver", driver), ("workers", workers), ("tree", tree)):
                self.peak[key] = max(self.peak[key], value)
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--checkpoint", default=None, help="a checkpoint folder (default: untrained real-baseline)"
    )
    p.add_argument("--photos", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--scale",
        type=int,
        default=10,
        help="the memory run's photos: this many times --photos (0: no memory run)",
    )
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--loop-threads", type=int, nargs="+", default=[0, 1], help="torch threads of the loop (0: default)"
    )
    p.add_argument("--no-record", action="store_true")
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    folder = Path(a.checkpoint) if a.checkpoint else untrained_checkpoint(tmp / "checkpoint")
    files = pick_photos(a.photos)
    once, scaled = linked(files, tmp / "photos", 1), linked(files, tmp / "scaled", max(a.scale, 1))
    base = {
        "checkpoint": a.checkpoint or "untrained real-baseline (160 px)",
        "passes": predict.DEFAULT_PASSES,
        "photos": len(files),
        "photo_files": [str(f.relative_to(settings.data_root())) for f in files],
        "cpus": psutil.cpu_count(),
    }

    def keep(experiment: str, config: dict, metrics: dict, label: str, load_before: list) -> None:
        rec = records.new_record("predict", experiment, base | config, metrics, label=label)
        rec["load"]["start"] = load_before  # the record is made after the run: its start is the run's
        print(label, {k: v for k, v in metrics.items() if k != "seconds_each"})
        if not a.no_record:
            print(f"-> {records.write_record(rec)}")

    def timed(fn, n: int) -> dict:
        seconds, load_before = [], list(os.getloadavg())
        for r in range(a.repeats):
            t0 = time.perf_counter()
            fn(r)
            seconds.append(time.perf_counter() - t0)
        median = statistics.median(seconds)
        return {"photos_per_s": n / median, "seconds": median, "seconds_each": seconds, "load": load_before}

    import torch

    default_threads, loop = torch.get_num_threads(), None
    for threads in a.loop_threads:  # 0: torch's default (one per core); 1: as each actor runs it
        torch.set_num_threads(threads or default_threads)
        m = timed(lambda r, t=threads: predict.predict_photos(folder, once, tmp / f"loop{t}_{r}"), len(once))
        n = torch.get_num_threads()
        config = {"path": "loop", "actors": None, "threads": n, "repeats": a.repeats}
        label = f"one-process loop, torch on {n} thread{'s' if n > 1 else ''}"
        keep("throughput", config, m, label, m.pop("load"))
        loop = loop or m | {"threads": n}
    torch.set_num_threads(default_threads)
    settings.init_ray()
    for actors in a.actors:

        def on_ray(r, actors=actors, photos=once, name="ray"):
            return predict_batch.predict_on_ray(
                folder, [str(f) for f in photos], tmp / f"{name}{actors}_{r}", actors=actors, pts=True
            )

        m = timed(on_ray, len(once))
        m["vs_loop"] = m["photos_per_s"] / loop["photos_per_s"]  # against the first loop measured
        keep(
            "throughput",
            {"path": "ray", "actors": actors, "repeats": a.repeats, "vs_loop_threads": loop["threads"]},
            m,
            f"Ray Data, {actors} actor{'s' if actors > 1 else ''}",
            m.pop("load"),
        )
    for photos, scale in ((once, 1), (scaled, a.scale)) if a.scale else ():  # --scale 0: no memory runs
        load_before = list(os.getloadavg())
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            result = predict_batch.predict_on_ray(
                folder, [str(f) for f in photos], tmp / f"mem{scale}", actors=2, pts=True
            )
            seconds = time.perf_counter() - t0
        metrics = {f"peak_{k}_mb": v / 2**20 for k, v in mem.peak.items()}
        metrics |= {"photos_per_s": len(photos) / seconds, "seconds": seconds, "rows": result.counts}
        keep(
            "memory",
            {"actors": 2, "scale": scale, "n": len(photos)},
            metrics,
            f"{len(photos)} photos ({scale}x)",
            load_before,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
