"""Prepare training-ready shards from manifests: crop, translate labels, write Parquet (landmix.prepare).

Locally (starts a local Ray):

    python jobs/prepare_data.py --smoke-test            # ingests the shared data into out/prepare_smoke/, prepares there
    python jobs/prepare_data.py out/300w.parquet out/fs.parquet --out out/prepared --crop-size 256 \
        [--translator out/translator.npz] [--num-cpus 2]

On a cluster (manifests and --out on storage every node sees):

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env-json '{"excludes": [".venv", ".git", "runs", "out", "data"]}' \
        -- python jobs/prepare_data.py /mnt/data/300w.parquet /mnt/data/fs.parquet --out /mnt/data/prepared

Same flags as `landmix prepare`; the output folder is replaced as a whole (shards/, quarantine.jsonl,
prepare.json).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.59+ default is token auth; set it explicitly
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from landmix import prepare, settings  # noqa: E402


def smoke_manifests(work, num_cpus: int | None) -> list[str]:
    """Ingest the shared 300-W AFW faces and the 100 FaceSynthetics renders into manifests under work."""

    from landmix.manifest import IngestConfig, ingest

    settings.init_ray(num_cpus=num_cpus)
    out = []
    for source, folder in (("300w", "300w/afw"), ("facesynthetics", "facesynthetics_100")):
        cfg = IngestConfig(source, settings.data_root() / folder, work / f"{source}.parquet")
        ingest(cfg)
        out.append(str(cfg.out))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke-test", action="store_true", help="prepare the shared data at 64 px")
    prepare.add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--smoke-test" in argv:  # manifests and --out are not needed: fill them in
        work = settings.PROJECT_ROOT / "out" / "prepare_smoke"
        cpus = parser.parse_known_args(["x", "--out", "x", *argv])[0].num_cpus
        argv = [*argv, "--crop-size", "64", *smoke_manifests(work, cpus), "--out", str(work / "prepared")]
    return prepare.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
