"""The study's report: NME against n_real per arm, how many real faces each arm is worth, and the verdict on
the seed study's claim, every number with a 95 % bootstrap interval.

Input is one row per trial, finished or not (a pandas DataFrame with columns strategy, n_real, alpha, seed,
nme, val_nme, seconds, epochs, status, run; NME as a fraction) and, optionally, each finished trial's per-face
test errors (run -> (M,) array, the same M test faces in the same order for every run). Steps, in order:

- `select_mixing(df)`: the finished trials the report compares; for mixing, the ratio with the lowest
  *validation* NME per (n_real, seed) (the test faces never choose it). `mixing_trials(df)`: every ratio
  tried, for the table.
- `landmix.bootstrap.bootstrap(selected, errors)`: B paired resamples of seeds (a seed's trials move together) and test faces
  (the same faces for every trial); each cell's mean NME under each. Without errors, seeds only.
- `summarize(df, boot)`: per (strategy, n_real): NME mean and interval, seeds, compute, epochs, chosen ratios.
- `real_equivalence(boot)`: per arm and n_real, the real-only faces reaching the same NME
  (`landmix.bootstrap.equivalent_real_faces`: log-n interpolation on the running-minimum real-only curve), each resample
  placed on its own resampled real-only curve.
- `verdict(equivalence, claim, summary)`: the claim "synthetic + 50 real faces >= 250 real faces", for
  pretraining + fine-tuning at n_real = 50, holds when the lower end of the interval is >= 250, does not hold
  when the upper end is < 250, is undecided otherwise; then the best arm at each n_real.
- `write_report(df, out_dir, errors)`: all of it as files (markdown, CSVs, PNG), returned as name -> path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from landmix.bootstrap import (
    CELL,
    Bootstrap,
    bootstrap,
    equivalent_real_faces,
    equivalent_real_faces_batch,
    interval,
)

REAL_ONLY, MIXED, PRETRAIN = "real_only", "mixed", "pretrain_finetune"
# The seed study's five arms, in the order tables and the figure list them: long names for the figure legend
# and the arms list, short names for tables and the verdict.
ARMS = {
    "real_only": "real only",
    "synthetic_only": "data adaptation (synthetic only, translated labels)",
    "label_adaptation": "label adaptation (synthetic model, outputs translated by a real-fitted map)",
    "mixed": "mixing (ratio searched per n_real)",
    "pretrain_finetune": "pretraining + fine-tuning",
}
SHORT = {
    "real_only": "real only",
    "synthetic_only": "data adaptation",
    "label_adaptation": "label adaptation",
    "mixed": "mixing",
    "pretrain_finetune": "pretraining + fine-tuning",
}
COLUMNS = ("strategy", "n_real", "alpha", "seed", "nme", "val_nme", "seconds", "epochs", "status", "run")


def _check(df: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"the report's trial table lacks column(s) {missing}; it needs {list(COLUMNS)}")
    if (df["n_real"] < 0).any():
        raise ValueError("n_real = -1 ('all') must be replaced by the number of real training faces before "
                         "reporting (the sweep does it from the trials' n_real_faces metric)")  # fmt: skip


def _finished(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & np.isfinite(df["nme"].astype(float))]


def select_mixing(df: pd.DataFrame) -> pd.DataFrame:
    """The finished trials the report compares: every arm's, except that for mixing only the ratio with the
    lowest validation NME per (n_real, seed) stays (its `alpha` says which). Stopped trials and test NME
    never take part in the choice: the test faces are for reporting only."""
    ok = _finished(df)
    mixed = ok[(ok["strategy"] == MIXED) & np.isfinite(ok["val_nme"].astype(float))]
    chosen = mixed.sort_values(["n_real", "seed", "val_nme", "alpha"]).groupby(["n_real", "seed"]).head(1)
    out = pd.concat([ok[ok["strategy"] != MIXED], chosen])
    return out.sort_values(CELL + ["seed"]).reset_index(drop=True)


def mixing_trials(df: pd.DataFrame) -> pd.DataFrame:
    """Every mixing trial (any status) with its ratio, validation and test NME, and whether it was chosen."""
    selected = select_mixing(df)
    chosen = set(selected.loc[selected["strategy"] == MIXED, "run"])
    cols = ["n_real", "seed", "alpha", "val_nme", "nme", "seconds", "epochs", "status", "run"]
    out = df.loc[df["strategy"] == MIXED, cols].sort_values(["n_real", "seed", "alpha"])
    return out.assign(chosen=out["run"].isin(chosen)).reset_index(drop=True)


def summarize(df: pd.DataFrame, boot: Bootstrap) -> pd.DataFrame:
    """One row per (strategy, n_real): NME mean and 95 % interval over the resamples, seeds, mean compute
    seconds and epochs per selected trial (more steps vs more data), the compute of every trial of the cell
    (mixing: the whole ratio search) and, for mixing, the ratio chosen per seed."""
    lo, hi = interval(boot.samples)
    out = boot.cells.assign(arm=boot.cells["strategy"].map(lambda s: SHORT.get(s, s)),
                            nme_mean=boot.point, nme_lo=lo, nme_hi=hi)  # fmt: skip
    per_cell = boot.trials.groupby(CELL).agg(seeds=("seed", "size"), seconds_mean=("seconds", "mean"),
                                             epochs_mean=("epochs", "mean"))  # fmt: skip
    mixed = boot.trials[boot.trials["strategy"] == MIXED].sort_values("seed")
    alphas = mixed.groupby(CELL)["alpha"].agg(lambda a: ", ".join(f"{x:g}" for x in a)).rename("alpha_chosen")
    total = df.groupby(CELL)["seconds"].sum(min_count=1).rename("seconds_all_trials")
    out = out.join(per_cell.join(alphas).join(total), on=CELL)
    out = out.assign(alpha_chosen=out["alpha_chosen"].astype(object).fillna(""), ended_by="")
    if "ended_by" in boot.trials:  # how many of the cell's trials converged (patience) or ran out of budget
        ended = boot.trials[boot.trials["ended_by"].fillna("") != ""].groupby(CELL)["ended_by"]
        counts = ended.agg(lambda e: ", ".join(f"{k} {v}" for k, v in e.value_counts().sort_index().items()))
        out = out.drop(columns="ended_by").join(counts, on=CELL).fillna({"ended_by": ""})
    return out


def real_equivalence(boot: Bootstrap) -> pd.DataFrame:
    """Per non-real-only arm and n_real: the real-only faces with the same mean NME, and its 95 % interval
    (each resample's arm placed on that resample's real-only curve). inf = better than every real-only
    point tried, 0 = worse than the fewest real faces tried (real_n_min / real_n_max say what was tried)."""
    real = (boot.cells["strategy"] == REAL_ONLY) & (boot.cells["n_real"] > 0)
    if not real.any():
        raise ValueError("real-image equivalence needs real_only trials with n_real > 0 in the sweep")
    real_n = boot.cells.loc[real, "n_real"].to_numpy()
    arms = (boot.cells["strategy"] != REAL_ONLY).to_numpy()
    point = [equivalent_real_faces(x, real_n, boot.point[real]) for x in boot.point[arms]]
    lo, hi = interval(equivalent_real_faces_batch(boot.samples[:, arms], real_n, boot.samples[:, real]))
    out = boot.cells[arms].reset_index(drop=True)
    return out.assign(arm=out["strategy"].map(lambda s: SHORT.get(s, s)), nme_mean=boot.point[arms],
                      real_equiv=point, real_equiv_lo=lo, real_equiv_hi=hi,
                      real_n_min=int(real_n.min()), real_n_max=int(real_n.max()))  # fmt: skip


def claim_status(lo: float, hi: float, real_faces: int) -> str:
    """The verdict's rule on a real-image-equivalence interval [lo, hi] against the claimed real faces:
    "holds", "does not hold" or "undecided"."""
    return "holds" if lo >= real_faces else "does not hold" if hi < real_faces else "undecided"


def _is(status: str) -> str:
    return "is undecided" if status == "undecided" else status


def _faces(x: float, n_min: int, n_max: int, inf: str = "> {n_max}", zero: str = "< {n_min}") -> str:
    """A real-face count as text: inf (better than every real-only point) and 0 (worse than the fewest real
    faces) in words that name what was tried."""
    return (inf if math.isinf(x) else zero if x == 0 else f"{x:.0f}").format(n_min=n_min, n_max=n_max)


def _worth(r) -> str:
    """'<arm> with <n> real faces is worth <x> real faces [95 % interval <lo>, <hi>]' (an equivalence row)."""
    x = _faces(r.real_equiv, r.real_n_min, r.real_n_max, "more than the {n_max} tried",
               "fewer than the {n_min} tried")  # fmt: skip
    lo, hi = (_faces(e, r.real_n_min, r.real_n_max) for e in (r.real_equiv_lo, r.real_equiv_hi))
    return f"{SHORT.get(r.strategy, r.strategy)} with {r.n_real} real faces is worth {x} real faces " \
           f"[95 % interval {lo}, {hi}]"


def verdict(equivalence: pd.DataFrame | None, claim: tuple[int, int] = (50, 250),
            summary: pd.DataFrame | None = None) -> str:  # fmt: skip
    """One paragraph on the seed study's claim "synthetic + claim[0] real faces >= claim[1] real faces",
    decided for pretraining + fine-tuning (and stated for the other arms run at n_real = claim[0]) by
    `claim_status`; with `summary`, also the arm with the lowest mean test NME at each n_real."""
    n_used, n_worth = claim
    said = f'The claim "synthetic + {n_used} real faces >= {n_worth} real faces"'
    rule = (f"Rule: the claim holds for an arm when the lower end of the 95 % bootstrap interval of its "
            f"real-image equivalence at n_real = {n_used} is at least {n_worth}, does not hold when the "
            f"upper end is below {n_worth}, and is undecided otherwise.")  # fmt: skip
    reach = int(equivalence["real_n_max"].iloc[0]) if equivalence is not None and len(equivalence) else 0
    pf = equivalence[equivalence["strategy"] == PRETRAIN] if equivalence is not None else None
    if equivalence is None:
        head = (f"{said} cannot be evaluated: real-only trials are needed (an arm's NME is converted into "
                "real faces on the real-only curve).")  # fmt: skip
    elif pf.empty:
        head = f"{said} cannot be evaluated: there are no pretraining + fine-tuning trials."
    elif reach < n_worth:
        head = (f"{said} cannot be tested: the real-only trials reach only {reach} real faces, so no arm "
                f"can be shown to be worth {n_worth}; add real-only trials with at least {n_worth} real "
                "faces.")  # fmt: skip
    elif not (pf["n_real"] == n_used).any():
        ran = ", ".join(str(n) for n in pf["n_real"])
        head = (f"{said} cannot be evaluated: pretraining + fine-tuning was not run at n_real = {n_used} "
                f"(it was run at n_real = {ran}).")  # fmt: skip
    else:
        r = next(pf[pf["n_real"] == n_used].itertuples())
        status = _is(claim_status(r.real_equiv_lo, r.real_equiv_hi, n_worth))
        head = f"{said} **{status}** for pretraining + fine-tuning: {_worth(r)}."
    others = []
    if reach >= n_worth:
        at = equivalence[(equivalence["n_real"] == n_used) & (equivalence["strategy"] != PRETRAIN)]
        for r in at.itertuples():
            worth = _worth(r)
            status = _is(claim_status(r.real_equiv_lo, r.real_equiv_hi, n_worth))
            others.append(f"{worth[0].upper()}{worth[1:]}: the claim {status} for it.")
    best = []
    if summary is not None and not summary.empty:
        top = summary.sort_values("nme_mean").groupby("n_real", sort=True).head(1).sort_values("n_real")
        best = ["Lowest mean test NME at each n_real: " + "; ".join(
            f"{r.n_real}: {r.arm} {r.nme_mean * 100:.2f} % [{r.nme_lo * 100:.2f}, {r.nme_hi * 100:.2f}]"
            for r in top.itertuples()) + "."]  # fmt: skip
    return " ".join([head, rule] + others + best)


def plot_nme_vs_n_real(summary: pd.DataFrame, path: Path, title: str = "NME on held-out real faces") -> Path:
    """One line per arm: mean test NME against n_real (log axis, 0 drawn left of the smallest n_real and
    labelled "0"), 95 % bootstrap intervals as error bars, the arms' long names in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positive = summary.loc[summary["n_real"] > 0, "n_real"]
    zero_x = positive.min() / 2.5 if len(positive) else 1.0
    fig, ax = plt.subplots(figsize=(9, 6.5), dpi=120)
    strategies = list(dict.fromkeys(summary["strategy"]))
    for k, strategy in enumerate(strategies):
        cur = summary[summary["strategy"] == strategy].sort_values("n_real")
        # a small sideways offset per arm (multiplicative: the axis is logarithmic) keeps error bars apart
        x = np.where(cur["n_real"] == 0, zero_x, cur["n_real"]) * 1.05 ** (k - (len(strategies) - 1) / 2)
        y, lo, hi = (cur[c].to_numpy() * 100 for c in ("nme_mean", "nme_lo", "nme_hi"))
        color = f"C{list(ARMS).index(strategy)}" if strategy in ARMS else None  # an arm keeps its colour
        ax.errorbar(x, y, yerr=[y - lo, hi - y], marker="o", capsize=3, color=color,
                    label=ARMS.get(strategy, strategy))  # fmt: skip
    ax.set_xscale("log")
    ticks = sorted({zero_x if n == 0 else n for n in summary["n_real"]})
    ax.set_xticks(ticks, ["0" if t == zero_x else str(int(t)) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("real training faces (n_real)")
    ax.set_ylabel("test NME (% of inter-ocular distance)")
    ax.set_title(f"{title}: mean over seeds, 95 % bootstrap interval")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False)
    fig.savefig(path, bbox_inches="tight")  # tight: keeps the legend below the axes
    plt.close(fig)
    return path


def _pct(x: float, lo: float, hi: float) -> str:
    return f"{x * 100:.2f} [{lo * 100:.2f}, {hi * 100:.2f}]" if np.isfinite(x) else ""


def _num(x: float, fmt: str = ".0f") -> str:
    return format(x, fmt) if np.isfinite(x) else ""


def to_markdown(verdict_text: str, method: str, summary: pd.DataFrame, equivalence: pd.DataFrame | None,
                mixing: pd.DataFrame | None) -> str:  # fmt: skip
    """summary.md: the verdict first, then the figure, the NME, equivalence and mixing tables, the arms."""
    lines = [verdict_text, "", method, "", "![NME against n_real](nme_vs_n_real.png)", "",
             "## Test NME per arm and n_real", "",
             "| arm | n_real | NME % mean [95 % interval] | seeds | compute s per trial (mean) "
             "| epochs (mean) | ended by | compute s, all trials of the cell | alpha chosen (per seed) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in summary.itertuples():
        lines.append(f"| {r.arm} | {r.n_real} | {_pct(r.nme_mean, r.nme_lo, r.nme_hi)} | {r.seeds} | "
                     f"{_num(r.seconds_mean)} | {_num(r.epochs_mean, '.1f')} | {r.ended_by} | "
                     f"{_num(r.seconds_all_trials)} | {r.alpha_chosen} |")  # fmt: skip
    lines += ["", "Compute: seconds of the training run (or fit) behind each model, Ray start-up included; for label "
              "adaptation and fine-tuning it includes the seed's synthetic-only training. Ended by: \"patience\" = "
              "validation NME had stopped improving (converged), \"budget\" = its budget (seconds or epochs) ran out first."]  # fmt: skip
    if equivalence is not None and not equivalence.empty:
        lines += ["", "## Real-image equivalence", "",
                  "Real-only faces that reach the arm's mean test NME on the real-only curve (log-n "
                  "interpolation); \"> all tried\": better than every real-only point.", "",
                  "| arm | n_real | NME % | equivalent real faces [95 % interval] |",
                  "|---|---|---|---|"]  # fmt: skip
        for r in equivalence.itertuples():
            x = _faces(r.real_equiv, r.real_n_min, r.real_n_max, "> all tried", "< fewest tried")
            lo, hi = (_faces(e, r.real_n_min, r.real_n_max) for e in (r.real_equiv_lo, r.real_equiv_hi))
            lines.append(f"| {r.arm} | {r.n_real} | {r.nme_mean * 100:.2f} | {x} [{lo}, {hi}] |")
    if mixing is not None and not mixing.empty:
        lines += ["", "## Mixing ratio search", "",
                  "Per n_real and seed the ratio with the lowest validation NME is chosen; test NME plays "
                  "no part.",
                  "",
                  "| n_real | seed | alpha | val NME % | test NME % | seconds | status | chosen |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in mixing.itertuples():
            lines.append(f"| {r.n_real} | {r.seed} | {r.alpha:g} | {_num(r.val_nme * 100, '.2f')} | "
                         f"{_num(r.nme * 100, '.2f')} | {_num(r.seconds)} | {r.status} | "
                         f"{'yes' if r.chosen else ''} |")  # fmt: skip
    arms = list(dict.fromkeys(summary["strategy"]))
    lines += ["", "## Arms", ""] + [f"- `{s}`: {ARMS.get(s, s)}" for s in arms]
    return "\n".join(lines) + "\n"


def write_report(df: pd.DataFrame, out_dir: Path, errors: dict[str, np.ndarray] | None = None,
                 claim: tuple[int, int] = (50, 250), n_boot: int = 1000,
                 seed: int = 0) -> dict[str, Path]:  # fmt: skip
    """Write the verdict, tables and figure into out_dir; return name -> path. `errors`: run -> per-face test
    NME of every finished trial (None: intervals over seeds only)."""
    from landmix import selection_report

    _check(df)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    everything = df
    if selection_report.has_selection(df):  # the arms' comparison is on random picks; selection has its section
        df = df[df["selection"].fillna("random") == "random"]
    selected = select_mixing(df)
    if selected.empty:
        raise ValueError("no finished trial (status 'ok' with a test NME) to report: see the trials' status")
    boot = bootstrap(selected, errors, n_boot, seed, order=tuple(ARMS))
    summary = summarize(df, boot)
    has_real = ((selected["strategy"] == REAL_ONLY) & (selected["n_real"] > 0)).any()
    equivalence = real_equivalence(boot) if has_real else None
    mixing = mixing_trials(df) if (df["strategy"] == MIXED).any() else None
    text = verdict(equivalence, claim, summary)
    faces = f"and {boot.n_faces} test faces" if boot.n_faces else "only (no per-face errors given)"
    method = (f"95 % intervals: percentiles of {n_boot} paired bootstrap resamples of seeds "
              f"({selected['seed'].nunique()}) {faces}; the same draw for every arm.")  # fmt: skip
    paths = {name: out_dir / file for name, file in [
        ("trials_csv", "trials.csv"), ("summary_csv", "summary.csv"), ("summary_md", "summary.md"),
        ("figure", "nme_vs_n_real.png"), ("verdict_md", "verdict.md")]}  # fmt: skip
    everything.to_csv(paths["trials_csv"], index=False)
    summary.to_csv(paths["summary_csv"], index=False)
    if equivalence is not None:
        paths["equivalence_csv"] = out_dir / "real_equivalence.csv"
        equivalence.to_csv(paths["equivalence_csv"], index=False)
    if mixing is not None:
        paths["mixing_csv"] = out_dir / "mixing_trials.csv"
        mixing.to_csv(paths["mixing_csv"], index=False)
    markdown = to_markdown(text, method, summary, equivalence, mixing)
    if selection_report.has_selection(everything):
        files, selection_verdict, section = selection_report.write(everything, out_dir, errors, n_boot, seed)
        paths |= files
        text += "\n\n" + selection_verdict if selection_verdict else ""
        markdown += "\n" + section
    paths["verdict_md"].write_text(text + "\n")
    paths["summary_md"].write_text(markdown)
    plot_nme_vs_n_real(summary, paths["figure"])
    return paths
