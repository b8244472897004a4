"""The study's report as files: the verdict, the NME and equivalence tables as markdown and CSV, and the figure of
NME against n_real per arm (the numbers come from `landmix.report`).

    paths = write_report(trials, out_dir, errors)   # name -> path: summary.md, verdict.md, trials.csv, ...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from landmix.bootstrap import bootstrap
from landmix.report import (
    ARMS,
    MIXED,
    REAL_ONLY,
    check_trials,
    faces_text,
    mixing_trials,
    real_equivalence,
    select_mixing,
    summarize,
    verdict,
)


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
        ax.errorbar(
            x,
            y,
            yerr=[y - lo, hi - y],
            marker="o",
            capsize=3,
            color=color,
            label=ARMS.get(strategy, strategy),
        )
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


def to_markdown(
    verdict_text: str,
    method: str,
    summary: pd.DataFrame,
    equivalence: pd.DataFrame | None,
    mixing: pd.DataFrame | None,
) -> str:
    """summary.md: the verdict first, then the figure, the NME, equivalence and mixing tables, the arms."""
    lines = [
        verdict_text,
        "",
        method,
        "",
        "![NME against n_real](nme_vs_n_real.png)",
        "",
        "## Test NME per arm and n_real",
        "",
        "| arm | n_real | NME % mean [95 % interval] | seeds | compute s per trial (mean) "
        "| epochs (mean) | ended by | compute s, all trials of the cell | alpha chosen (per seed) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        lines.append(
            f"| {r.arm} | {r.n_real} | {_pct(r.nme_mean, r.nme_lo, r.nme_hi)} | {r.seeds} | "
            f"{_num(r.seconds_mean)} | {_num(r.epochs_mean, '.1f')} | {r.ended_by} | "
            f"{_num(r.seconds_all_trials)} | {r.alpha_chosen} |"
        )
    lines += [
        "",
        "Compute: seconds of the training run (or fit) behind each model, Ray start-up included; for label "
        'adaptation and fine-tuning it includes the seed\'s synthetic-only training. Ended by: "patience" = '
        'validation NME had stopped improving (converged), "budget" = its budget (seconds or epochs) ran out first.',
    ]
    if equivalence is not None and not equivalence.empty:
        lines += [
            "",
            "## Real-image equivalence",
            "",
            "Real-only faces that reach the arm's mean test NME on the real-only curve (log-n "
            'interpolation); "> all tried": better than every real-only point.',
            "",
            "| arm | n_real | NME % | equivalent real faces [95 % interval] |",
            "|---|---|---|---|",
        ]
        for r in equivalence.itertuples():
            x = faces_text(r.real_equiv, r.real_n_min, r.real_n_max, "> all tried", "< fewest tried")
            lo, hi = (faces_text(e, r.real_n_min, r.real_n_max) for e in (r.real_equiv_lo, r.real_equiv_hi))
            lines.append(f"| {r.arm} | {r.n_real} | {r.nme_mean * 100:.2f} | {x} [{lo}, {hi}] |")
    if mixing is not None and not mixing.empty:
        lines += [
            "",
            "## Mixing ratio search",
            "",
            "Per n_real and seed the ratio with the lowest validation NME is chosen; test NME plays no part.",
            "",
            "| n_real | seed | alpha | val NME % | test NME % | seconds | status | chosen |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in mixing.itertuples():
            lines.append(
                f"| {r.n_real} | {r.seed} | {r.alpha:g} | {_num(r.val_nme * 100, '.2f')} | "
                f"{_num(r.nme * 100, '.2f')} | {_num(r.seconds)} | {r.status} | "
                f"{'yes' if r.chosen else ''} |"
            )
    arms = list(dict.fromkeys(summary["strategy"]))
    lines += ["", "## Arms", ""] + [f"- `{s}`: {ARMS.get(s, s)}" for s in arms]
    return "\n".join(lines) + "\n"


def write_report(
    df: pd.DataFrame,
    out_dir: Path,
    errors: dict[str, np.ndarray] | None = None,
    claim: tuple[int, int] = (50, 250),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the verdict, tables and figure into out_dir; return name -> path. `errors`: run -> per-face test
    NME of every finished trial (None: intervals over seeds only)."""
    from landmix import selection_report

    check_trials(df)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    everything = df
    # the arms' comparison is on random picks; selection has its section
    if selection_report.has_selection(df):
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
    method = (
        f"95 % intervals: percentiles of {n_boot} paired bootstrap resamples of seeds "
        f"({selected['seed'].nunique()}) {faces}; the same draw for every arm."
    )
    paths = {
        name: out_dir / file
        for name, file in [
            ("trials_csv", "trials.csv"),
            ("summary_csv", "summary.csv"),
            ("summary_md", "summary.md"),
            ("figure", "nme_vs_n_real.png"),
            ("verdict_md", "verdict.md"),
        ]
    }
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
