"""The study's selection table and verdict: how many randomly chosen real faces each method's picks are worth.

Input: the study's trial rows with a `selection` column (landmix.report's columns + selection) and the
per-face test errors. For each arm that has selection cells (real only, pretraining + fine-tuning) and each
method, at each n_real: test NME with its 95 % interval, the paired difference to random picks at the same
n_real, and the random picks of the same arm that reach the same NME ("worth": log-n interpolation on the
arm's random curve, `bootstrap.equivalent_real_faces`), every resample on its own random curve. Seeds and
test faces are resampled together for every cell (`bootstrap.bootstrap`).

The verdict is for the method chosen on the VALIDATION faces (lowest mean validation NME over seeds at the
claim's n_real, pretraining + fine-tuning): its picks are worth more than random when the lower end of the
interval of their worth is above n_real, less when the upper end is below it, and no different otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from landmix.bootstrap import bootstrap, equivalent_real_faces, equivalent_real_faces_batch, interval

RANDOM = "random"
ARM = "pretrain_finetune"  # the arm the verdict is about
SHORT = {"real_only": "real only", "pretrain_finetune": "pretraining + fine-tuning"}


def has_selection(df: pd.DataFrame) -> bool:
    return "selection" in df and (df["selection"].fillna(RANDOM) != RANDOM).any()


def _key(strategy: str, selection: str) -> str:
    return f"{strategy}|{selection}"


def selection_table(
    df: pd.DataFrame, errors: dict | None = None, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """One row per (strategy, method, n_real) of the arms with selection cells: test NME [interval], mean
    validation NME, NME minus random's at the same n_real [interval], and the random faces it is worth."""
    ok = df[(df["status"] == "ok") & np.isfinite(df["nme"].astype(float))].copy()
    ok["selection"] = ok["selection"].fillna(RANDOM)
    arms = sorted(set(ok.loc[ok["selection"] != RANDOM, "strategy"]))
    ok = ok[ok["strategy"].isin(arms)]
    if ok.empty:
        return pd.DataFrame()
    keyed = ok.assign(strategy=[_key(s, m) for s, m in zip(ok["strategy"], ok["selection"])])
    boot = bootstrap(keyed, errors, n_boot, seed)
    cells = boot.cells.assign(
        arm=[k.split("|")[0] for k in boot.cells["strategy"]],
        method=[k.split("|")[1] for k in boot.cells["strategy"]],
    )
    lo, hi = interval(boot.samples)
    val = keyed.groupby(["strategy", "n_real"])["val_nme"].mean()
    rows = []
    for arm in arms:
        random = ((cells["arm"] == arm) & (cells["method"] == RANDOM)).to_numpy()
        real_n = cells.loc[random, "n_real"].to_numpy()
        for j in np.flatnonzero((cells["arm"] == arm).to_numpy()):
            c = cells.iloc[j]
            row = {
                "strategy": arm,
                "arm": SHORT.get(arm, arm),
                "method": c["method"],
                "n_real": int(c["n_real"]),
                "seeds": int(((keyed["strategy"] == c["strategy"]) & (keyed["n_real"] == c["n_real"])).sum()),
                "nme_mean": boot.point[j],
                "nme_lo": lo[j],
                "nme_hi": hi[j],
                "val_nme_mean": float(val.get((c["strategy"], c["n_real"]), np.nan)),
                "real_n_min": int(real_n.min()) if len(real_n) else 0,
                "real_n_max": int(real_n.max()) if len(real_n) else 0,
            }
            same = np.flatnonzero(random & (cells["n_real"] == c["n_real"]).to_numpy())
            if len(same):
                diff = boot.samples[:, j] - boot.samples[:, same[0]]
                d_lo, d_hi = interval(diff[:, None])
                row |= {
                    "diff_mean": boot.point[j] - boot.point[same[0]],
                    "diff_lo": d_lo[0],
                    "diff_hi": d_hi[0],
                }
            if len(real_n) >= 2:
                w_lo, w_hi = interval(
                    equivalent_real_faces_batch(boot.samples[:, [j]], real_n, boot.samples[:, random])
                )
                row |= {
                    "worth": equivalent_real_faces(boot.point[j], real_n, boot.point[random]),
                    "worth_lo": w_lo[0],
                    "worth_hi": w_hi[0],
                }
            rows.append(row)
    order = {m: i for i, m in enumerate((RANDOM, "coverage", "uncertainty", "hybrid"))}
    out = pd.DataFrame(rows)
    out = out.assign(_o=out["method"].map(order).fillna(len(order))).sort_values(["strategy", "n_real", "_o"])
    return out.drop(columns="_o").reset_index(drop=True)


def _faces(x: float, lo_n: int, hi_n: int) -> str:
    if not np.isfinite(x):
        return f"> {hi_n}" if x == np.inf else ""
    return f"< {lo_n}" if x == 0 else f"{x:.0f}"


def verdict(table: pd.DataFrame, n_real: int = 50) -> tuple[str, str]:
    """(the verdict sentence, the chosen method): the method with the lowest mean validation NME at n_real
    for pretraining + fine-tuning, and how many random faces its picks are worth."""
    rows = table[(table["strategy"] == ARM) & (table["n_real"] == n_real) & (table["method"] != RANDOM)]
    rows = rows[np.isfinite(rows["val_nme_mean"])]
    if rows.empty or "worth" not in rows:
        return f"No selection verdict: no finished {ARM} cell with picked faces at n_real {n_real}.", ""
    best = rows.loc[rows["val_nme_mean"].idxmin()]
    m, x, lo, hi = best["method"], best["worth"], best["worth_lo"], best["worth_hi"]
    span = (int(best["real_n_min"]), int(best["real_n_max"]))
    worth = f"{_faces(x, *span)} random real faces [95 % interval {_faces(lo, *span)}, {_faces(hi, *span)}]"
    if lo > n_real:
        outcome = f"**selection beats random here**: {m}'s {n_real} picks are worth {worth}"
    elif hi < n_real:
        outcome = f"**selection loses to random here**: {m}'s {n_real} picks are worth only {worth}"
    else:
        outcome = (
            f"**selection did not beat random here**: {m}'s {n_real} picks are worth {worth}, an interval "
            f"that holds {n_real}"
        )
    nme = (
        (
            f"test NME {best['nme_mean'] * 100:.2f} % against {best['nme_mean'] * 100 - best['diff_mean'] * 100:.2f} % "
            f"for random picks (difference {best['diff_mean'] * 100:+.2f} points [{best['diff_lo'] * 100:+.2f}, "
            f"{best['diff_hi'] * 100:+.2f}])"
        )
        if np.isfinite(best.get("diff_mean", np.nan))
        else ""
    )
    text = (
        f"Which faces to label (pretraining + fine-tuning, {n_real} labels): the method chosen on the validation "
        f"faces is **{m}** (mean validation NME {best['val_nme_mean'] * 100:.2f} %); {outcome}; {nme}."
    )
    return text, m


def plot(table: pd.DataFrame, path) -> Path:
    """Test NME against n_real per method, one panel per arm, with the 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(table["strategy"]))
    fig, axes = plt.subplots(1, len(arms), figsize=(5.5 * len(arms), 4), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        for k, (m, rows) in enumerate(table[table["strategy"] == arm].groupby("method", sort=False)):
            # a little apart, so the bars do not overlap
            x = rows["n_real"].to_numpy() * (1 + 0.03 * (k - 1.5))
            y = rows["nme_mean"].to_numpy() * 100
            err = np.abs(np.vstack([rows["nme_lo"], rows["nme_hi"]]) * 100 - y)
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=m, ls="-" if m == RANDOM else "--")
        ax.set_xscale("log")
        ax.set_xlabel("labelled real faces (n_real)")
        ax.set_ylabel("test NME % (held-out real faces)")
        ax.set_title(SHORT.get(arm, arm), fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def to_markdown(table: pd.DataFrame, verdict_text: str) -> str:
    """The report's section: the verdict, the figure and the table (every method, also where it loses)."""
    lines = [
        "## Which real faces to label (annotation-budget selection)",
        "",
        verdict_text,
        "",
        "![NME against n_real per selection method](selection_nme.png)",
        "",
        "| arm | method | n_real | test NME % [95 %] | val NME % | minus random, points [95 %] "
        "| worth random faces [95 %] | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        nme = f"{r.nme_mean * 100:.2f} [{r.nme_lo * 100:.2f}, {r.nme_hi * 100:.2f}]"
        diff = (
            ""
            if r.method == RANDOM or not np.isfinite(getattr(r, "diff_mean", np.nan))
            else f"{r.diff_mean * 100:+.2f} [{r.diff_lo * 100:+.2f}, {r.diff_hi * 100:+.2f}]"
        )
        span = (r.real_n_min, r.real_n_max)
        worth = (
            ""
            if r.method == RANDOM or not hasattr(r, "worth")
            else f"{_faces(r.worth, *span)} [{_faces(r.worth_lo, *span)}, {_faces(r.worth_hi, *span)}]"
        )
        lines.append(
            f"| {r.arm} | {r.method} | {r.n_real} | {nme} | {r.val_nme_mean * 100:.2f} | {diff} | {worth} "
            f"| {r.seeds} |"
        )
    lines += [
        "",
        "Picks: the first n_real of each method's ranking of the training pool by the seed's synthetic-only "
        "model (`landmix select`'s methods, from detector boxes, never from labels); random: the seeded n_real "
        "order every other arm uses. Worth: the random picks of the same arm that reach the same mean test NME "
        "(log-n interpolation on that arm's random curve, which runs to all the training pool); \"minus "
        'random" < 0 = better than random picks of the same number.',
    ]
    return "\n".join(lines) + "\n"


def write(
    df: pd.DataFrame, out_dir: Path, errors: dict | None = None, n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, Path], str, str]:
    """selection.csv and selection_nme.png in out_dir; returns (name -> path, the verdict, the markdown section)."""
    table = selection_table(df, errors, n_boot, seed)
    if table.empty:
        return {}, "", ""
    text, _ = verdict(table)
    paths = {
        "selection_csv": Path(out_dir) / "selection.csv",
        "selection_figure": Path(out_dir) / "selection_nme.png",
    }
    table.to_csv(paths["selection_csv"], index=False)
    plot(table, paths["selection_figure"])
    return paths, text, to_markdown(table, text)
