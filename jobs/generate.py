"""Render the embedded synthetic faces (landmix.generate) in the FaceSynthetics layout with Ray Data.

Locally (starts a local Ray on every core):

    python jobs/generate.py --smoke-test                       # 64 faces at 128 px into out/generate_smoke/
    python jobs/generate.py --n 100000 --size 128 --seed 0 --out out/synth128
    python jobs/generate.py --n 5000 --mode recompose --source ../shared/data/facesynthetics_100 --out out/recomposed

On a cluster (--out on storage every node sees; each node renders its share of the batches):

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env-json '{"excludes": [".venv", ".git", "runs", "out", "data"]}' \
        -- python jobs/generate.py --n 100000 --size 256 --out /mnt/data/synth256

Same flags as `landmix generate`. A re-run with the same flags skips the samples already written.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.59+ default is token auth; set it explicitly
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from landmix import settings  # noqa: E402
from landmix.generate import job  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke-test", action="store_true", help="64 faces at 128 px into out/generate_smoke"
    )
    job.add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--smoke-test" in argv:  # --n and --out are not needed: fill them in
        argv += ["--n", "64", "--out", str(settings.PROJECT_ROOT / "out" / "generate_smoke")]
    return job.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
