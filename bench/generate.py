"""Benchmark of the procedural generator: images/s/core, 1 -> 2 core scaling, and a large run's wall time and memory.

    .venv/bin/python bench/generate.py                        # all three parts, 100,000 samples for the large run
    .venv/bin/python bench/generate.py --big-n 20000 --skip-rate --skip-scaling
    .venv/bin/python bench/generate.py --sheet docs/generator_contact_sheet.png \
        --recompose-source ../shared/data/facesynthetics_100  # the contact sheet

Parts (each appended as a record to docs/results/generate/records.jsonl, whose tables `python -m landmix.records
render docs/results/generate.md` regenerates; `--no-record`: printed only):
1. per-core rate: render + encode + write N samples in one process at 128 and 256 px; wall rate and the rate per
   CPU-second of this process (the latter is what one core does when other jobs share the machine).
2. scaling: `generate()` on a fresh local Ray with num_cpus=1, then num_cpus=2 (Ray start-up not timed).
3. large run: `generate()` of --big-n samples at 128 px with num_cpus=2; wall time, and the peak memory of this
   process and all its descendants (Ray's GCS, raylet and workers), as the sum of PSS (shared pages counted once)
   and of RSS, sampled every 0.5 s from /proc.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from landmix import records  # noqa: E402
from landmix.generate import FaceConfig, generator_version, make_sample  # noqa: E402
from landmix.generate.face3d import LOOK  # noqa: E402
from landmix.generate.job import GenerateConfig, add_look_argument, encode_sample, generate, write_sample  # noqa: E402


def _tree(root: int) -> set[int]:
    """`root` and all its descendants, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    return tree


def _tree_cpu(root: int) -> float:
    """User + system CPU seconds of `root` and its live descendants."""
    total = 0
    for p in _tree(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _tree_memory(root: int) -> tuple[int, int]:
    """(PSS, RSS) bytes summed over `root` and all its descendants, read from /proc."""
    pss = rss = 0
    for p in _tree(root):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return pss, rss


class PeakMemory:
    """Samples _tree_memory(os.getpid()) in a thread; .pss / .rss hold the peaks in bytes."""

    def __init__(self, every: float = 0.5):
        self.every, self.pss, self.rss = every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            pss, rss = _tree_memory(os.getpid())
            self.pss, self.rss = max(self.pss, pss), max(self.rss, rss)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def per_core_rate(size: int, n: int, repeats: int, out: Path, look: tuple[str, ...] = LOOK) -> dict:
    walls, cpus = [], []
    face = FaceConfig(look=look)
    make_sample(0, 0, size, face)  # warm-up: imports, caches
    for r in range(repeats):
        folder = out / f"rate{size}_{r}"
        folder.mkdir(parents=True, exist_ok=True)
        w0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            s = make_sample(r, i, size, face)
            write_sample(folder, i, encode_sample(s.image, s.seg, s.xray, s.annotator))
        walls.append(n / (time.perf_counter() - w0))
        cpus.append(n / (time.process_time() - c0))
        shutil.rmtree(folder)
    return {
        "size": size,
        "look": list(look),
        "n": n,
        "repeats": repeats,
        "wall_img_s": statistics.median(walls),
        "cpu_img_s": statistics.median(cpus),
    }


def ray_run(num_cpus: int, n: int, size: int, out: Path, track_memory: bool = False) -> dict:
    import ray

    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR")
    try:
        cfg = GenerateConfig(n=n, out=out, size=size, seed=0, samples_per_task=64)
        cpu0 = _tree_cpu(os.getpid())
        if track_memory:
            with PeakMemory() as mem:
                res = generate(cfg)
        else:
            mem, res = None, generate(cfg)
        cpu1 = _tree_cpu(os.getpid())  # before shutdown: the workers are still alive
    finally:
        ray.shutdown()
    row = {
        "num_cpus": num_cpus,
        "n": n,
        "size": size,
        "wall_s": res.seconds,
        "img_s": n / res.seconds,
        "written": res.written,
        "load_avg_1m_after": os.getloadavg()[0],
        "tree_cpu_s": cpu1 - cpu0,
        "img_per_cpu_s": n / max(cpu1 - cpu0, 1e-9),
    }
    if mem is not None:
        row.update(peak_pss_gib=mem.pss / 2**30, peak_rss_gib=mem.rss / 2**30)
    return row


def contact_sheet(
    path: Path,
    seed: int = 0,
    size: int = 128,
    recompose_source: Path | None = None,
    look: tuple[str, ...] = LOOK,
) -> Path:
    """6 x 6 procedural samples (+ a row re-composed from recompose_source), drawn 2x with both label sets:
    annotator convention in red (68), x-ray convention in green (70, on top; the jaw differs on turned faces)."""
    import cv2
    import numpy as np

    def tile(image, xray, annotator):
        im = cv2.resize(
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR), (2 * size, 2 * size), interpolation=cv2.INTER_NEAREST
        )
        for pts, col, rad in ((annotator, (40, 40, 255), 3), (xray, (40, 255, 40), 2)):
            for x, y in [] if pts is None else pts * 2 + 0.5:
                cv2.circle(im, (int(x * 4), int(y * 4)), rad * 4, col, -1, cv2.LINE_AA, 2)
        return im

    tiles = []
    for i in range(36):
        s = make_sample(seed, i, size, FaceConfig(look=look))
        tiles.append(tile(s.image, s.xray, s.annotator))
    if recompose_source is not None:
        from landmix.generate.recompose import Recomposer

        r = Recomposer.load(recompose_source)
        tiles += [tile(*(lambda o: (o[0], o[2], o[3]))(r.make(seed, i, size))) for i in range(6)]
    rows = [np.hstack(tiles[k : k + 6]) for k in range(0, len(tiles), 6)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/landmix_bench_generate"))
    p.add_argument("--rate-n", type=int, default=400, help="samples per repeat of the per-core rate")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scaling-n", type=int, default=4000)
    p.add_argument("--big-n", type=int, default=100_000)
    p.add_argument("--skip-rate", action="store_true")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--skip-big", action="store_true")
    p.add_argument("--sheet", type=Path, help="only draw the contact sheet to this PNG, then exit")
    p.add_argument("--no-record", action="store_true", help="print the figures only; write no record")
    add_look_argument(p)
    p.add_argument(
        "--recompose-source", type=Path, help="add a row re-composed from this FaceSynthetics folder"
    )
    args = p.parse_args(argv)
    if args.sheet:
        print(contact_sheet(args.sheet, recompose_source=args.recompose_source, look=tuple(args.look)))
        return 0
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    look = tuple(args.look)
    version = generator_version(look)
    look_name = "flat" if not look else "every step" if look == tuple(LOOK) else " + ".join(look)
    write = (lambda rec: None) if args.no_record else records.write_record  # noqa: E731
    if not args.skip_rate:
        rec = records.new_record(
            "generate",
            "rate",
            {
                "generator": version,
                "look": look_name,
                "n": args.rate_n,
                "repeats": args.repeats,
                "processes": 1,
            },
        )
        for r in [per_core_rate(s, args.rate_n, args.repeats, args.out, look) for s in (128, 256)]:
            print(
                f"rate {r['size']} px: {r['wall_img_s']:.0f} img/s wall, {r['cpu_img_s']:.0f} img/CPU-s",
                flush=True,
            )
            rec["metrics"] |= {
                f"img_per_s_{r['size']}": round(r["wall_img_s"], 1),
                f"img_per_cpu_s_{r['size']}": round(r["cpu_img_s"], 1),
            }
        write(rec)
    runs = [] if args.skip_scaling else [("scaling", c, args.scaling_n, False) for c in (1, 2)]
    runs += [] if args.skip_big else [("big", 2, args.big_n, True)]
    for experiment, cpus, n, memory in runs:
        rec = records.new_record(
            "generate",
            experiment,
            {"num_cpus": cpus, "n": n, "size": 128, "generator": version, "look": look_name},
            label="the Ray Data job" if experiment == "big" else f"{cpus} CPU",
        )
        r = ray_run(cpus, n, 128, args.out / f"{experiment}{cpus}", track_memory=memory)
        rec["metrics"] = {
            "wall_s": round(r["wall_s"], 1),
            "img_per_s": round(r["img_s"], 1),
            "cpu_s": round(r["tree_cpu_s"], 1),
            "img_per_cpu_s": round(r["img_per_cpu_s"], 1),
            "written": r["written"],
        }
        if memory:
            rec["metrics"] |= {"peak_pss_gib": r["peak_pss_gib"], "peak_rss_sum_gib": r["peak_rss_gib"]}
        print(f"{experiment}: num_cpus={cpus} {r['img_s']:.0f} img/s ({r['wall_s']:.1f} s)", flush=True)
        write(rec)
    shutil.rmtree(args.out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
