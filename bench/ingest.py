"""Benchmark of `landmix ingest` on a FaceSynthetics-layout folder of 10,000 / 100,000 samples.

The folder is made in /tmp by hard-linking the 100 shared renders (png, ldmks, seg) under new ids
(000000..N-1, sample i links render i % 100), so it costs no disk space. Each run is the console
script as a user types it, starting its own local Ray; while it runs, the memory of its whole
process tree (driver, GCS, raylet, Ray workers) is sampled every 0.5 s with psutil. Each run appends a
record to docs/results/ingest/records.jsonl (`--no-record`: none); the medians are printed.

    .venv/bin/python bench/ingest.py --sizes 10000 --repeats 3
    .venv/bin/python bench/ingest.py --sizes 100000 --repeats 1
    .venv/bin/python bench/ingest.py --sizes 10000 --repeats 3 --decode   # with a full decode per image
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from landmix import records, settings

try:
    import psutil
except ImportError:  # Ray vendors psutil in ray/thirdparty_files, put on sys.path by `import ray`
    importlib.import_module("ray")
    psutil = importlib.import_module("psutil")

LANDMIX = Path(sys.executable).with_name("landmix")
SUFFIXES = (".png", "_ldmks.txt", "_seg.png")


def build_folder(root: Path, n: int, renders: Path) -> Path:
    """root/fs_{n}: n samples hard-linked from the renders (reused when already complete)."""
    folder = root / f"fs_{n}"
    stems = sorted(p.name[:-4] for p in renders.glob("[0-9]*.png") if not p.name.endswith("_seg.png"))
    if (folder / f"{n - 1:06d}_seg.png").exists() and len(os.listdir(folder)) == 3 * n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(n):
        src = stems[i % len(stems)]
        for suffix in SUFFIXES:
            dst = folder / f"{i:06d}{suffix}"
            if not dst.exists():
                os.link(renders / f"{src}{suffix}", dst)
    print(f"built {folder} ({n} samples, {3 * n} links) in {time.perf_counter() - t0:.1f} s", flush=True)
    return folder


class TreeMemory(threading.Thread):
    """Peak summed RSS and PSS of a process and all its descendants, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.root, self.every = psutil.Process(pid), every
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = pss = 0
            for p in procs:
                try:
                    info = p.memory_full_info()
                    rss, pss = rss + info.rss, pss + info.pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(procs))
            self.done.wait(self.every)


def run_once(folder: Path, out: Path, decode: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["RAY_DATA_DISABLE_PROGRESS_BARS"] = "1"  # a non-interactive log: keep it short
    cmd = [str(LANDMIX), "ingest", "--source", "facesynthetics", str(folder), "--out", str(out), "--strict"]
    cmd += ["--decode"] if decode else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    mem = TreeMemory(proc.pid)
    mem.start()
    log, _ = proc.communicate()
    wall = time.perf_counter() - t0
    mem.done.set()
    mem.join()
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed (exit {proc.returncode}):\n{log[-4000:]}")
    summary = [line for line in log.splitlines() if line.startswith("read ")][-1]
    ingest_s = float(re.search(r"; ([0-9.]+) s;", summary).group(1))
    return {
        "wall_s": round(wall, 2),
        "ingest_s": ingest_s,  # listing + Ray Data validation + Parquet write, without Ray start-up
        "peak_rss_gb": round(mem.peak_rss / 1e9, 3),
        "peak_pss_gb": round(mem.peak_pss / 1e9, 3),
        "processes": mem.peak_procs,
        "manifest_mb": round(out.stat().st_size / 1e6, 2),
        "summary": summary,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--decode", action="store_true", help="pass --decode to the ingest")
    parser.add_argument("--work", type=Path, default=Path("/tmp/landmix_bench_ingest"))
    parser.add_argument("--no-record", action="store_true", help="print the figures only; write no record")
    args = parser.parse_args()
    renders = settings.data_root() / "facesynthetics_100"
    if not renders.is_dir():
        raise SystemExit(f"no renders at {renders}; set LANDMIX_DATA_ROOT to the shared data folder")
    for n in args.sizes:
        folder = build_folder(args.work, n, renders)
        runs = []
        for r in range(args.repeats):
            rec = records.new_record(
                "ingest",
                "ingest",
                {
                    "n": n,
                    "decode": args.decode,
                    "repeat": r,
                    "source": "facesynthetics (hard links of the 100 renders)",
                },
            )
            res = run_once(folder, args.work / f"fs_{n}.parquet", args.decode)
            rec["metrics"] = res | {"samples_per_s": n / res["ingest_s"]}
            runs.append(res)
            print(json.dumps(res), flush=True)
            if not args.no_record:
                records.write_record(rec)
        med = {
            k: statistics.median(x[k] for x in runs)
            for k in ("wall_s", "ingest_s", "peak_rss_gb", "peak_pss_gb")
        }
        print(
            f"n={n} decode={args.decode}: median wall {med['wall_s']:.1f} s, ingest {med['ingest_s']:.1f} s "
            f"({n / med['ingest_s']:.0f} samples/s), peak RSS {med['peak_rss_gb']:.2f} GB, "
            f"PSS {med['peak_pss_gb']:.2f} GB over {len(runs)} runs",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
