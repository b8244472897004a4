"""The sweep's comparison: NME against n_real per strategy, the results table, real-image equivalence.

Input is one row per finished trial (a pandas DataFrame with columns strategy, n_real, alpha, seed,
nme); output is what a user reads to answer "how much real data does synthetic data replace":

- `summarize(df)`: one row per (strategy, n_real, alpha) with the mean, std and count over seeds.
- `real_equivalence(df)`: for every synthetic strategy and n_real, how many real-only faces reach
  the same NME, interpolated on the real-only curve (NME is interpolated linearly in log n_real),
  given per seed so that its spread shows.
- `plot_nme_vs_n_real(summary, path)`: the seed study's key figure.
- `write_report(df, out_dir)`: all of the above as files (PNG, CSV, markdown), returned as paths.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

REAL_ONLY = "real_only"
KEYS = ["strategy", "n_real", "alpha"]


def _check_counts(df: pd.DataFrame) -> None:
    if (df["n_real"] < 0).any():
        raise ValueError("n_real = -1 ('all') must be replaced by the number of real training faces before "
                         "reporting (the sweep does it from the trials' n_real_faces metric)")


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean/std/count of NME over seeds for each (strategy, n_real, alpha) cell, sorted."""
    g = df.groupby(KEYS, dropna=False)["nme"]
    out = g.agg(nme_mean="mean", nme_std="std", seeds="count").reset_index()
    out["nme_std"] = out["nme_std"].fillna(0.0)
    return out.sort_values(KEYS).reset_index(drop=True)


def equivalent_real_faces(nme: float, real_n: np.ndarray, real_nme: np.ndarray) -> float:
    """How many real-only faces give this NME on the real-only curve (n, nme), interpolated in log n.

    Returns +inf when `nme` beats the best real-only point (more real faces than were tried would be
    needed), and 0 when it is worse than the worst one. The real-only curve is made monotone
    (a running minimum over n) first, so that noise cannot give two answers.
    """
    order = np.argsort(real_n)
    n = np.asarray(real_n, dtype=float)[order]
    e = np.minimum.accumulate(np.asarray(real_nme, dtype=float)[order])
    keep = n > 0  # log-interpolation needs n > 0; real-only at n_real = 0 is not a trial
    n, e = n[keep], e[keep]
    if len(n) == 0:
        raise ValueError("the real-only curve has no point with n_real > 0: add real_only trials to the sweep")
    if nme < e[-1]:
        return math.inf
    if nme >= e[0]:
        return float(n[0]) if nme == e[0] else 0.0
    # e is non-increasing in n: find the segment [i, i+1] with e[i] >= nme > e[i+1].
    i = int(np.searchsorted(-e, -nme, side="right")) - 1
    i = min(max(i, 0), len(n) - 2)
    if e[i] == e[i + 1]:
        return float(n[i])
    t = (e[i] - nme) / (e[i] - e[i + 1])
    return float(math.exp(math.log(n[i]) + t * (math.log(n[i + 1]) - math.log(n[i]))))


def real_equivalence(df: pd.DataFrame) -> pd.DataFrame:
    """Per synthetic strategy, n_real and alpha: the real-only face count with the same NME, per seed.

    The real-only curve is the mean over seeds at each n_real; each synthetic trial (one seed) is placed
    on it, and the median, min and max over seeds are reported.
    """
    real = df[df["strategy"] == REAL_ONLY].groupby("n_real")["nme"].mean()
    if real.empty:
        raise ValueError("real-image equivalence needs real_only trials in the sweep")
    rows = []
    synth = df[df["strategy"] != REAL_ONLY]
    for (strategy, n_real, alpha), cell in synth.groupby(KEYS, dropna=False):
        eq = [equivalent_real_faces(x, real.index.values, real.values) for x in cell["nme"]]
        rows.append({
            "strategy": strategy, "n_real": int(n_real), "alpha": alpha, "seeds": len(eq),
            "nme_mean": float(cell["nme"].mean()),
            "real_equiv_median": float(np.median(eq)),
            "real_equiv_min": float(np.min(eq)),
            "real_equiv_max": float(np.max(eq)),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _label(strategy: str, alpha) -> str:
    return strategy if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)) else f"{strategy} a={alpha:g}"


def plot_nme_vs_n_real(summary: pd.DataFrame, path: Path, title: str = "NME on held-out real faces") -> Path:
    """One curve per (strategy, alpha): mean NME over seeds against n_real, std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    # n_real = 0 (synthetic only) is drawn at x = 5 on the log axis and labelled "0".
    zero_x = 5.0
    for (strategy, alpha), cur in summary.groupby(["strategy", "alpha"], dropna=False):
        cur = cur.sort_values("n_real")
        x = [zero_x if n == 0 else n for n in cur["n_real"]]
        ax.errorbar(x, cur["nme_mean"] * 100, yerr=cur["nme_std"] * 100, marker="o", capsize=3,
                    label=_label(strategy, alpha))  # fmt: skip
    ax.set_xscale("log")
    ticks = sorted({zero_x if n == 0 else n for n in summary["n_real"]})
    ax.set_xticks(ticks, ["0" if t == zero_x else str(int(t)) for t in ticks])
    ax.set_xlabel("real training faces (n_real)")
    ax.set_ylabel("NME (% of inter-ocular distance)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt_equiv(x: float) -> str:
    return "> all tried" if math.isinf(x) else f"{x:.0f}"


def to_markdown(summary: pd.DataFrame, equivalence: pd.DataFrame | None) -> str:
    lines = ["| strategy | alpha | n_real | NME % (mean ± std) | seeds |", "|---|---|---|---|---|"]
    for r in summary.itertuples():
        alpha = "" if r.alpha is None or (isinstance(r.alpha, float) and math.isnan(r.alpha)) else f"{r.alpha:g}"
        lines.append(f"| {r.strategy} | {alpha} | {r.n_real} | {r.nme_mean * 100:.2f} ± {r.nme_std * 100:.2f} "
                     f"| {r.seeds} |")  # fmt: skip
    if equivalence is not None and not equivalence.empty:
        lines += ["", "Real-image equivalence (real-only faces reaching the same NME; median [min, max] over seeds):",
                  "", "| strategy | alpha | n_real | equivalent real faces |", "|---|---|---|---|"]  # fmt: skip
        for r in equivalence.itertuples():
            alpha = "" if r.alpha is None or (isinstance(r.alpha, float) and math.isnan(r.alpha)) else f"{r.alpha:g}"
            lines.append(f"| {r.strategy} | {alpha} | {r.n_real} | {_fmt_equiv(r.real_equiv_median)} "
                         f"[{_fmt_equiv(r.real_equiv_min)}, {_fmt_equiv(r.real_equiv_max)}] |")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_report(df: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Write the comparison figure, tables and equivalence into out_dir; return name -> path."""
    _check_counts(df)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(df)
    has_real = (df["strategy"] == REAL_ONLY).any() and (df.loc[df["strategy"] == REAL_ONLY, "n_real"] > 0).any()
    equivalence = real_equivalence(df) if has_real else None
    paths = {
        "trials_csv": out_dir / "trials.csv",
        "summary_csv": out_dir / "summary.csv",
        "summary_md": out_dir / "summary.md",
        "figure": out_dir / "nme_vs_n_real.png",
    }
    df.to_csv(paths["trials_csv"], index=False)
    summary.to_csv(paths["summary_csv"], index=False)
    if equivalence is not None:
        paths["equivalence_csv"] = out_dir / "real_equivalence.csv"
        equivalence.to_csv(paths["equivalence_csv"], index=False)
    paths["summary_md"].write_text(to_markdown(summary, equivalence))
    plot_nme_vs_n_real(summary, paths["figure"])
    return paths
