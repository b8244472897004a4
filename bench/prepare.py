"""Benchmarks of the prepare job (landmix.prepare); each measurement is printed and appended as a record to
docs/results/prepare/records.jsonl (`--no-record` before the subcommand: printed only), the page of
docs/results/prepare.md.

    python bench/prepare.py throughput --n 1000 --repeats 3   # plain loop (1 proc) vs the job on 1 and 2 CPUs
    python bench/prepare.py memory --n 10000 30000            # peak memory of the whole process tree
    python bench/prepare.py processes --n 4000 --cpus 2       # one job run: CPU seconds per kind of process
    python bench/prepare.py coverage                          # docs/crop_coverage.png + docs/prepared_samples.png
    python bench/prepare.py translator --train 2000 --test 1000 --mlp   # x-ray -> annotator labels

Inputs are built under /tmp/landmix_bench: N synthetic faces by hard-linking the 100 shared
FaceSynthetics renders (real decode cost, no disk cost) with a manifest in `landmix.manifest.SCHEMA`, and
the shared 300-W faces (AFW + HELEN train) as the real manifest that fixes the crop distribution.
Every measurement runs in a fresh child process (its own local Ray with --num-cpus).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from landmix import crops, prepare, records, settings  # noqa: E402
from landmix.manifest import SCHEMA, landmarks_array, read_manifest  # noqa: E402
from landmix.sources import w300  # noqa: E402

WORK = Path("/tmp/landmix_bench")
DOCS = settings.PROJECT_ROOT / "docs"


def real_manifest() -> Path:
    """The shared 300-W faces (AFW + HELEN train) as a manifest."""
    out = WORK / "real300w.parquet"
    if out.exists():
        return out
    import cv2

    rows = []
    for folder in ("300w/afw", "300w/helen/trainset"):
        root = settings.data_root() / folder
        for p in sorted(root.glob("*.pts")):
            h, w = cv2.imread(str(p.with_suffix(".jpg"))).shape[:2]
            rows.append(
                {
                    "id": p.stem,
                    "source": "300w",
                    "split": "train",
                    "root": str(root),
                    "image_path": p.with_suffix(".jpg").name,
                    "width": w,
                    "height": h,
                    "landmarks": w300.read_pts(p).tolist(),
                    "scheme": "ibug68",
                    "seg_path": None,
                    "landmarks_annotator": None,
                    "content_hash": "",
                }
            )
    WORK.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out)
    return out


def synthetic_manifest(n: int) -> Path:
    """n synthetic faces: hard links to the 100 shared renders, and their manifest."""
    out = WORK / f"fs_{n}.parquet"
    if out.exists():
        return out
    src = settings.data_root() / "facesynthetics_100"
    root = WORK / f"fs_{n}"
    root.mkdir(parents=True, exist_ok=True)
    base = [
        (p.name[: -len("_ldmks.txt")], np.loadtxt(p, np.float32)) for p in sorted(src.glob("*_ldmks.txt"))
    ]
    rows = []
    for i in range(n):
        stem, pts = base[i % len(base)]
        ident = f"{i:06d}"
        for suffix in (".png", "_ldmks.txt"):
            link = root / f"{ident}{suffix}"
            if not link.exists():
                os.link(src / f"{stem}{suffix}", link)
        rows.append(
            {
                "id": ident,
                "source": "facesynthetics",
                "split": "train",
                "root": str(root),
                "image_path": f"{ident}.png",
                "width": 512,
                "height": 512,
                "landmarks": pts,
                "scheme": "synth70",
                "seg_path": None,
                "landmarks_annotator": None,
                "content_hash": stem,
            }
        )
    table = pa.table(
        {
            k: [r[k] for r in rows]
            if k != "landmarks"
            else pa.array([r[k].tolist() for r in rows], SCHEMA.field("landmarks").type)
            for k in SCHEMA.names
        },
        schema=SCHEMA,
    )
    pq.write_table(table, out)
    return out


class TreeMemory:
    """Samples the summed RSS and PSS of this process and all its descendants (Ray's too) every period s."""

    def __init__(self, period: float = 1.0):
        import psutil

        self.psutil, self.period, self.peak_rss, self.peak_pss = psutil, period, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = self.psutil.Process()
        while not self._stop.is_set():
            rss = pss = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    info = p.memory_full_info()
                    rss, pss = rss + info.rss, pss + info.pss
                except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                    pass
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.period)

    def cpu_by_kind(self) -> dict[str, float]:
        """User + system CPU seconds so far of this process and its live descendants, per kind: "driver",
        "worker" (Ray task workers), Ray's internal actors by name (ray::_StatsActor ...), raylet, gcs_server..."""
        out: dict[str, float] = {}
        me = self.psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            try:
                t, title = p.cpu_times(), (p.cmdline() or [p.name()])[0]
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                continue
            if p.pid == me.pid:
                kind = "driver"
            elif title.startswith("ray::") and not title.startswith("ray::_") and not title.endswith("Agent"):
                kind = "worker"  # ray::IDLE, or the task it runs
            else:
                kind = title.split()[0].rsplit("/", 1)[-1]
            out[kind] = out.get(kind, 0.0) + t.user + t.system
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time of this process and its live descendants so far."""
        return sum(self.cpu_by_kind().values())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_plain(manifests: list[Path], out: Path, crop_size: int) -> dict:
    """The same per-image work in one process: read, prepare_row, write a Parquet file per 128 rows."""
    tables = [read_manifest(m) for m in manifests]
    cfg = prepare.PrepareConfig(tuple(map(str, manifests)), str(out), crop_size)
    dist = prepare.crop_distribution(cfg, tables)
    tr = prepare.load_or_fixed("")
    inputs = pa.concat_tables([t.select(prepare.INPUT_COLUMNS) for t in tables])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start, cpu0 = time.perf_counter(), time.process_time()
    for k, i in enumerate(range(0, len(inputs), 128)):
        good, _ = prepare.prepare_rows(inputs.slice(i, 128).to_pylist(), dist, tr, crop_size, 0)
        pq.write_table(pa.Table.from_pylist(good, schema=prepare.SHARD_SCHEMA), out / f"part-{k:05d}.parquet")
    return {
        "rows": len(inputs),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu0,
    }


def run_job(
    manifests: list[Path], out: Path, crop_size: int, cpus: int, rows_per_block: int, mem: bool
) -> dict:
    import ray

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="ERROR")
    cfg = prepare.PrepareConfig(
        tuple(map(str, manifests)), str(out), crop_size, rows_per_block=rows_per_block
    )
    # Reading smaps for PSS costs CPU: throughput runs sample rarely, memory runs every second.
    with TreeMemory(period=1.0 if mem else 3600.0) as mem:
        start = time.perf_counter()
        cpu0 = mem.cpu_by_kind()
        summary = prepare.prepare(cfg)
        seconds = time.perf_counter() - start
        by_kind = {k: round(v - cpu0.get(k, 0.0), 2) for k, v in mem.cpu_by_kind().items()}
        cpu = sum(by_kind.values())
    ray.shutdown()
    return {
        "rows": summary["rows_written"],
        "seconds": seconds,
        "cpu_seconds": cpu,
        "cpu_seconds_by_process": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
        "peak_rss_mb": mem.peak_rss / 2**20,
        "peak_pss_mb": mem.peak_pss / 2**20,
    }


def child(
    kind: str, n: int, crop_size: int, cpus: int = 1, rows_per_block: int = 128, real: bool = False
) -> dict:
    """Run one measurement in a fresh interpreter pinned to `cpus` cores (Ray's processes inherit the
    affinity, and OpenCV's own threads cannot use more); returns its JSON result."""
    cmd = [
        sys.executable,
        __file__,
        "_child",
        kind,
        str(n),
        str(crop_size),
        str(cpus),
        str(rows_per_block),
        str(int(real)),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _child(argv):
    kind, n, crop_size, cpus, rows_per_block, real = argv
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: int(cpus)]))
    manifests = ([real_manifest()] if int(real) else []) + [synthetic_manifest(int(n))]
    out = WORK / f"out_{kind}_{n}"
    if kind == "plain":
        res = run_plain(manifests, out, int(crop_size))
    else:
        res = run_job(manifests, out, int(crop_size), int(cpus), int(rows_per_block), kind == "memory")
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(res))


def emit(args, experiment: str, config: dict, figures: dict, label: str | None = None) -> None:
    """Print a measurement and append it as a record of the prepare page (unless --no-record)."""
    print(json.dumps(figures, indent=1), flush=True)
    if not args.no_record:
        rec = records.new_record("prepare", experiment, config, figures, label=label)
        print(f"-> {records.write_record(rec)}", flush=True)


THROUGHPUT_ROWS = {
    "plain_1proc": "plain loop, 1 process, 1 core",
    "job_1cpu": "prepare job, Ray, 1 core",
    "job_2cpu": "prepare job, Ray, 2 cores",
}


def throughput(args):
    synthetic_manifest(args.n)
    results = {"plain_1proc": [], "job_1cpu": [], "job_2cpu": []}
    for _ in range(args.repeats):  # interleaved, so load changes on the machine hit all three alike
        results["plain_1proc"].append(child("plain", args.n, args.crop_size))
        results["job_1cpu"].append(child("job", args.n, args.crop_size, 1, args.rows_per_block))
        results["job_2cpu"].append(child("job", args.n, args.crop_size, 2, args.rows_per_block))
    rate = {k: float(np.median([r["rows"] / r["seconds"] for r in v])) for k, v in results.items()}
    cpu_ms = {
        k: float(np.median([1000 * r["cpu_seconds"] / r["rows"] for r in v])) for k, v in results.items()
    }
    print(f"job on 2 cores / plain loop: {rate['job_2cpu'] / rate['plain_1proc']:.2f} x", flush=True)
    for mode, label in THROUGHPUT_ROWS.items():  # a record per row of the page's table
        emit(
            args,
            "throughput",
            {
                "n": args.n,
                "mode": mode,
                "crop_size": args.crop_size,
                "repeats": args.repeats,
                "rows_per_block": args.rows_per_block,
            },
            {
                "images_per_s_median": rate[mode],
                "cpu_ms_per_image_median": cpu_ms[mode],
                "runs": results[mode],
            },
            label=label,
        )


def processes(args):
    """One job run on `--cpus` cores: where its CPU time goes, per kind of process."""
    synthetic_manifest(args.n)
    res = child("job", args.n, args.crop_size, args.cpus, args.rows_per_block)
    busy = res["cpu_seconds"] / res["seconds"]
    emit(
        args,
        "processes",
        {"n": args.n, "cpus": args.cpus, "crop_size": args.crop_size, "rows_per_block": args.rows_per_block},
        {
            "images_per_s": res["rows"] / res["seconds"],
            "cores_busy": busy,
            "cpu_ms_per_image": 1000 * res["cpu_seconds"] / res["rows"],
            "cpu_seconds_by_process": res["cpu_seconds_by_process"],
        },
    )


def memory(args):
    for n in args.n:
        synthetic_manifest(n)
        res = child("memory", n, args.crop_size, 2, args.rows_per_block)
        emit(
            args,
            "memory",
            {"n": n, "cpus": 2, "crop_size": args.crop_size, "rows_per_block": args.rows_per_block},
            res | {"images_per_s": res["rows"] / res["seconds"]},
        )


def coverage(args):
    """Crop statistics before (whole images) and after (prepared crops), real vs synthetic."""
    import cv2
    import ray

    real, syn = real_manifest(), synthetic_manifest(100)
    out = WORK / "coverage"
    if not (out / "prepare.json").exists():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
        prepare.prepare(prepare.PrepareConfig((str(real), str(syn)), str(out), 256))
        ray.shutdown()
    before, tables = {}, {}
    for name, m in (("real 300-W", real), ("synthetic", syn)):
        t = tables[name] = read_manifest(m)
        pts = landmarks_array(t["landmarks"])[:, :68]
        before[name] = crops.crop_stats(pts, t["width"].to_numpy(), t["height"].to_numpy())
    shards = pq.read_table(out / "shards")
    pts = np.asarray(shards["landmarks"].to_pylist(), np.float64).reshape(-1, 68, 2)
    size = shards["crop_size"].to_numpy().astype(float)
    after_stats = crops.crop_stats(pts, size, size)
    synthetic = shards["is_synthetic"].to_numpy(zero_copy_only=False)
    panels = {
        **{f"before: {k}": v for k, v in before.items()},
        "after: real 300-W": after_stats[~synthetic],
        "after: synthetic": after_stats[synthetic],
    }
    sizes = {f"before: {k}": np.column_stack([t["width"], t["height"]]) for k, t in tables.items()}
    sizes["after: all crops"] = np.column_stack([size, size])
    crops.plot_coverage(panels, DOCS / "crop_coverage.png", sizes)
    summary = {
        k: {"median": np.median(v, 0).round(3).tolist(), "std": v.std(0).round(3).tolist()}
        for k, v in panels.items()
    }
    emit(args, "coverage", {"real": str(real), "synthetic_faces": 100, "crop_size": 256}, summary)
    # A look at the prepared crops with their points (8 real, 8 synthetic).
    picks = np.concatenate([np.flatnonzero(~synthetic)[:8], np.flatnonzero(synthetic)[:8]])
    tiles = []
    for i in picks:
        img = cv2.imdecode(np.frombuffer(shards["image"][int(i)].as_py(), np.uint8), cv2.IMREAD_COLOR)
        img = cv2.resize(img, (96, 96), interpolation=cv2.INTER_AREA)
        for x, y in (pts[i] + 0.5) * 96 / 256 - 0.5:
            cv2.circle(img, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
        tiles.append(img)
    cv2.imwrite(str(DOCS / "prepared_samples.png"), np.vstack([np.hstack(tiles[:8]), np.hstack(tiles[8:])]))


def generator_pairs(seed: int, n: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(x-ray SYNTH70 (n, 70, 2), annotator IBUG68 (n, 68, 2)) label pairs of the procedural generator."""
    from landmix.generate import FaceConfig, sample_rng
    from landmix.generate.face3d import sample_face

    faces = [sample_face(sample_rng(seed, i), FaceConfig(), size) for i in range(n)]
    return np.array([f.xray for f in faces], np.float64), np.array([f.annotator for f in faces], np.float64)


def translator(args):
    """NME (% of inter-ocular) between translated x-ray labels and the true annotator labels."""
    from landmix import metrics, translate
    from landmix.schemes import IBUG68

    x, y = generator_pairs(0, args.train)
    xt, yt = generator_pairs(1, args.test)

    def nme(p, g, idx=slice(None)):
        return round(float(metrics.nme(p, g, IBUG68, idx).mean() * 100), 3)

    fixed = translate.fixed()
    rows = {"fixed table (untranslated)": fixed(xt)}
    for n in sorted({50, 300, args.train}):
        tr = translate.fit(x[:n], y[:n])
        rows[f"ridge, {n} pairs (alpha {tr.alpha:g})"] = tr(xt)
    tr.save(WORK / "translator_generated.npz")
    if args.mlp:  # the comparison that decided against shipping an MLP (needs scikit-learn)
        from sklearn.neural_network import MLPRegressor

        def norm(p, q):
            a, t = translate.align(p, tr.ref)
            return a, t, np.einsum("nij,nkj->nki", a, q) + t[:, None]

        _, _, xn = norm(x, x)
        _, _, yn = norm(x, y)
        at, tt, xtn = norm(xt, xt)
        mlp = MLPRegressor(hidden_layer_sizes=(256,), alpha=1e-4, max_iter=500, random_state=0)
        mlp.fit(xn.reshape(len(x), -1), (yn - xn[:, :68]).reshape(len(x), -1))
        pn = xtn[:, :68] + mlp.predict(xtn.reshape(len(xt), -1)).reshape(-1, 68, 2)
        rows[f"MLP 256 hidden, {len(x)} pairs"] = np.einsum(
            "nij,nkj->nki", np.linalg.inv(at), pn - tt[:, None]
        )
    table = {
        k: {"all": nme(p, yt), "jaw 0-16": nme(p, yt, slice(0, 17)), "inner 17-67": nme(p, yt, slice(17, 68))}
        for k, p in rows.items()
    }
    for k, nme_percent in table.items():  # a record per row of the page's table
        emit(
            args,
            "translator",
            {"train": args.train, "test": args.test, "mlp": args.mlp},
            {
                "version": tr.version,
                "nme_all_percent": nme_percent["all"],
                "nme_jaw_percent": nme_percent["jaw 0-16"],
                "nme_inner_percent": nme_percent["inner 17-67"],
            },
            label=k,
        )


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        return _child(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-record", action="store_true", help="print the figures only; write no record")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--n", type=int, default=1000)
    t.add_argument("--repeats", type=int, default=3)
    m = sub.add_parser("memory")
    m.add_argument("--n", type=int, nargs="+", default=[10000, 30000])
    pr = sub.add_parser("processes")
    pr.add_argument("--n", type=int, default=4000)
    pr.add_argument("--cpus", type=int, default=2)
    for s in (t, m, pr):
        s.add_argument("--crop-size", type=int, default=256)
        s.add_argument("--rows-per-block", type=int, default=128)
    sub.add_parser("coverage")
    tr = sub.add_parser("translator")
    tr.add_argument("--train", type=int, default=2000)
    tr.add_argument("--test", type=int, default=1000)
    tr.add_argument("--mlp", action="store_true", help="also fit a scikit-learn MLP for comparison")
    args = p.parse_args()
    {
        "throughput": throughput,
        "memory": memory,
        "processes": processes,
        "coverage": coverage,
        "translator": translator,
    }[args.what](args)


if __name__ == "__main__":
    main()
