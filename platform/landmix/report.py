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
- `landmix.report_files.write_report(df, out_dir, errors)`: all of it as files (markdown, CSVs, PNG).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from landmix.bootstrap import CELL, Bootstrap, equivalent_real_faces, equivalent_real_faces_batch, interval

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


def check_trials(df: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"the report's trial table lacks column(s) {missing}; it needs {list(COLUMNS)}")
    if (df["n_real"] < 0).any():
        raise ValueError(
            "n_real = -1 ('all') must be replaced by the number of real training faces before "
            "reporting (the sweep does it from the trials' n_real_faces metric)"
        )


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
    out = boot.cells.assign(
        arm=boot.cells["strategy"].map(lambda s: SHORT.get(s, s)), nme_mean=boot.point, nme_lo=lo, nme_hi=hi
    )
    per_cell = boot.trials.groupby(CELL).agg(
        seeds=("seed", "size"), seconds_mean=("seconds", "mean"), epochs_mean=("epochs", "mean")
    )
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
    return out.assign(
        arm=out["strategy"].map(lambda s: SHORT.get(s, s)),
        nme_mean=boot.point[arms],
        real_equiv=point,
        real_equiv_lo=lo,
        real_equiv_hi=hi,
        real_n_min=int(real_n.min()),
        real_n_max=int(real_n.max()),
    )


def claim_status(lo: float, hi: float, real_faces: int) -> str:
    """The verdict's rule on a real-image-equivalence interval [lo, hi] against the claimed real faces:
    "holds", "does not hold" or "undecided"."""
    return "holds" if lo >= real_faces else "does not hold" if hi < real_faces else "undecided"


def _is(status: str) -> str:
    return "is undecided" if status == "undecided" else status


def faces_text(x: float, n_min: int, n_max: int, inf: str = "> {n_max}", zero: str = "< {n_min}") -> str:
    """A real-face count as text: inf (better than every real-only point) and 0 (worse than the fewest real
    faces) in words that name what was tried."""
    return (inf if math.isinf(x) else zero if x == 0 else f"{x:.0f}").format(n_min=n_min, n_max=n_max)


def _worth(r) -> str:
    """'<arm> with <n> real faces is worth <x> real faces [95 % interval <lo>, <hi>]' (an equivalence row)."""
    x = faces_text(
        r.real_equiv,
        r.real_n_min,
        r.real_n_max,
        "more than the {n_max} tried",
        "fewer than the {n_min} tried",
    )
    lo, hi = (faces_text(e, r.real_n_min, r.real_n_max) for e in (r.real_equiv_lo, r.real_equiv_hi))
    return (
        f"{SHORT.get(r.strategy, r.strategy)} with {r.n_real} real faces is worth {x} real faces "
        f"[95 % interval {lo}, {hi}]"
    )


def verdict(
    equivalence: pd.DataFrame | None, claim: tuple[int, int] = (50, 250), summary: pd.DataFrame | None = None
) -> str:
    """One paragraph on the seed study's claim "synthetic + claim[0] real faces >= claim[1] real faces",
    decided for pretraining + fine-tuning (and stated for the other arms run at n_real = claim[0]) by
    `claim_status`; with `summary`, also the arm with the lowest mean test NME at each n_real."""
    n_used, n_worth = claim
    said = f'The claim "synthetic + {n_used} real faces >= {n_worth} real faces"'
    rule = (
        f"Rule: the claim holds for an arm when the lower end of the 95 % bootstrap interval of its "
        f"real-image equivalence at n_real = {n_used} is at least {n_worth}, does not hold when the "
        f"upper end is below {n_worth}, and is undecided otherwise."
    )
    reach = int(equivalence["real_n_max"].iloc[0]) if equivalence is not None and len(equivalence) else 0
    pf = equivalence[equivalence["strategy"] == PRETRAIN] if equivalence is not None else None
    if equivalence is None:
        head = (
            f"{said} cannot be evaluated: real-only trials are needed (an arm's NME is converted into "
            "real faces on the real-only curve)."
        )
    elif pf.empty:
        head = f"{said} cannot be evaluated: there are no pretraining + fine-tuning trials."
    elif reach < n_worth:
        head = (
            f"{said} cannot be tested: the real-only trials reach only {reach} real faces, so no arm "
            f"can be shown to be worth {n_worth}; add real-only trials with at least {n_worth} real "
            "faces."
        )
    elif not (pf["n_real"] == n_used).any():
        ran = ", ".join(str(n) for n in pf["n_real"])
        head = (
            f"{said} cannot be evaluated: pretraining + fine-tuning was not run at n_real = {n_used} "
            f"(it was run at n_real = {ran})."
        )
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
        best = [
            "Lowest mean test NME at each n_real: "
            + "; ".join(
                f"{r.n_real}: {r.arm} {r.nme_mean * 100:.2f} % [{r.nme_lo * 100:.2f}, {r.nme_hi * 100:.2f}]"
                for r in top.itertuples()
            )
            + "."
        ]
    return " ".join([head, rule] + others + best)
