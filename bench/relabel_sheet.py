"""The same synthetic faces under two labellings, side by side: what a translator did to the labels, drawn.

    .venv/bin/python bench/relabel_sheet.py out/generator_ablation/prepared/synthetic-256-ridge-0dadf6b76550-g592ac7c8fe/shards \\
        out/generator_ablation/prepared/synthetic-256-chain-f22fa1138e21-gdbe334fefe/shards --out docs/generator_relabelled_modes6.png

Each argument is a `landmix prepare` output folder (its `shards/`); the first `--faces` ids both hold are drawn,
the first folder's points in green on the left, the second's in red on the right (each on its own crop: a crop
is drawn round its labels, so the two crops of a face differ a little).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pyarrow.parquet as pq

from landmix.pool import shard_folder


def faces(folder: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{id: (crop BGR, (68, 2) crop pixels)} of a prepare folder's shards."""
    t = pq.read_table(shard_folder(folder), columns=["id", "image", "landmarks"]).to_pydict()
    return {i: (cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), np.reshape(pts, (-1, 2)))
            for i, png, pts in zip(t["id"], t["image"], t["landmarks"])}  # fmt: skip


def tile(image: np.ndarray, pts: np.ndarray, colour: tuple[int, int, int], size: int) -> np.ndarray:
    scale = size / image.shape[0]
    out = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    for x, y in pts * scale:
        cv2.circle(out, (int(round(x)), int(round(y))), 2, colour, -1, cv2.LINE_AA)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", help="a prepare folder (green)")
    p.add_argument("after", help="a prepare folder of the same faces, labelled otherwise (red)")
    p.add_argument("--faces", type=int, default=8)
    p.add_argument("--size", type=int, default=160, help="tile side, px")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    before, after = faces(args.before), faces(args.after)
    ids = sorted(set(before) & set(after))[: args.faces]
    if not ids:
        raise SystemExit(f"{args.before} and {args.after} hold no face in common: give two labellings of the same faces")
    pairs = [np.hstack([tile(*before[i], (0, 200, 0), args.size), tile(*after[i], (0, 0, 255), args.size)]) for i in ids]
    pairs += [np.zeros_like(pairs[0])] * (len(pairs) % 2)
    cv2.imwrite(args.out, np.vstack([np.hstack(pairs[k : k + 2]) for k in range(0, len(pairs), 2)]))
    print(f"{len(ids)} faces -> {args.out}")


if __name__ == "__main__":
    main()
