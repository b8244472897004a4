"""The study's report: real-image equivalence on constructed curves with known answers, the mixing ratio
chosen on validation only, bootstrap intervals on synthetic per-face errors, the verdict's three outcomes."""

import math

import numpy as np
import pandas as pd
import pytest

from _png import assert_drawn, read_png
from landmix import bootstrap, report, report_files

FACES = 241
REAL_CURVE = {10: 0.080, 50: 0.060, 250: 0.045, 1000: 0.035}  # real-only test NME falls with log n_real


def _row(strategy, n_real, seed, nme, alpha=np.nan, val_nme=None, status="ok", run=None):
    return dict(
        strategy=strategy,
        n_real=n_real,
        alpha=alpha,
        seed=seed,
        nme=nme,
        val_nme=nme + 0.002 if val_nme is None else val_nme,
        seconds=60.0 + n_real / 10,
        epochs=20,
        status=status,
        run=run or f"{strategy}-{n_real}-{alpha}-{seed}",
    )


ARMS = ("pretrain_finetune", "mixed", "synthetic_only")


def _study(pf_nme=0.050, shape=2.0, seeds=3, real=REAL_CURVE, arms=ARMS, rng_seed=0):
    """A finished study with per-face errors: real-only at `real`'s n_real, pretraining + fine-tuning at 50
    around `pf_nme`, mixing at 50 (two ratios), synthetic only. Per-face errors are gamma-distributed (shape
    `shape`: larger is less noisy) with the given means; each row's nme is its errors' mean."""
    rng = np.random.default_rng(rng_seed)
    rows, errors = [], {}

    def add(strategy, n_real, seed, mean, **kw):
        row = _row(strategy, n_real, seed, 0.0, **kw)
        errors[row["run"]] = e = rng.gamma(shape, mean / shape, FACES)
        rows.append(row | {"nme": float(e.mean()), "val_nme": float(e.mean()) + 0.002})

    for seed in range(seeds):
        for n, m in real.items():
            add("real_only", n, seed, m)
        if "pretrain_finetune" in arms:
            add("pretrain_finetune", 50, seed, pf_nme)
        if "mixed" in arms:
            for alpha, m in [(0.25, 0.070), (0.5, 0.055)]:
                add("mixed", 50, seed, m, alpha=alpha)
        if "synthetic_only" in arms:
            add("synthetic_only", 0, seed, 0.12)
    return pd.DataFrame(rows), errors


def _verdict(df, errors, claim=(50, 250), n_boot=300):
    selected = report.select_mixing(df)
    boot = bootstrap.bootstrap(selected, errors, n_boot=n_boot, seed=0)
    has_real = (selected["strategy"] == "real_only").any()
    eq = report.real_equivalence(boot) if has_real else None
    return report.verdict(eq, claim, report.summarize(df, boot)), eq


CLAIM = 'The claim "synthetic + 50 real faces >= 250 real faces"'


def test_equivalent_real_faces_interpolates_in_log_n():
    n, e = np.array([10, 20, 40]), np.array([0.10, 0.09, 0.08])
    assert bootstrap.equivalent_real_faces(0.09, n, e) == pytest.approx(20)
    assert bootstrap.equivalent_real_faces(0.085, n, e) == pytest.approx(math.sqrt(20 * 40))
    assert bootstrap.equivalent_real_faces(0.07, n, e) == math.inf  # better than every real-only point
    assert bootstrap.equivalent_real_faces(0.2, n, e) == 0.0  # worse than the fewest real faces


def test_equivalence_is_robust_to_a_non_monotone_real_curve():
    n, e = np.array([10, 20, 40]), np.array([0.10, 0.11, 0.08])  # noisy bump at 20
    # the running minimum flattens the bump: 0.09 lies halfway (in NME) between n=20 and n=40
    assert bootstrap.equivalent_real_faces(0.09, n, e) == pytest.approx(math.sqrt(20 * 40))


def test_batch_equivalence_agrees_with_the_scalar_one():
    rng = np.random.default_rng(1)
    n = np.array([250, 10, 50, 1000])  # unsorted on purpose
    curves = rng.uniform(0.03, 0.08, (200, 4))  # (B, R): non-monotone ones too
    curves[:20, 2] = curves[:20, 0]  # plateaus (equal neighbours)
    x = rng.uniform(0.02, 0.09, (200, 6))
    x[:, 0] = curves[:, 1]  # exactly on the first point
    x[:, 1] = curves.min(1)  # exactly on the best point
    got = bootstrap.equivalent_real_faces_batch(x, n, curves)
    want = np.array([[bootstrap.equivalent_real_faces(v, n, c) for v in row] for row, c in zip(x, curves)])
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert np.isinf(got).any() and (got == 0).any() and ((got > 10) & np.isfinite(got)).any()


def test_interval_keeps_infinity():
    samples = np.array([[1.0, 2.0, 3.0] + [np.inf] * 97]).T  # (100, 1): mostly better than every point tried
    lo, hi = bootstrap.interval(samples)
    assert lo[0] == 3.0 and hi[0] == math.inf
    assert np.isnan(bootstrap.interval(np.full((10, 1), np.nan))[0][0])  # a cell no resample could measure


def test_select_mixing_chooses_on_validation_only():
    rows = [
        _row("mixed", 50, 0, nme=0.030, alpha=0.25, val_nme=0.050),  # best test NME, worse validation
        _row("mixed", 50, 0, nme=0.045, alpha=0.50, val_nme=0.040),  # the lowest val_nme: chosen
        _row("mixed", 50, 0, nme=np.nan, alpha=0.75, val_nme=0.010, status="stopped"),  # ASHA: never chosen
        _row("mixed", 50, 0, nme=np.nan, alpha=0.90, val_nme=np.nan, status="error"),
        _row("mixed", 50, 1, nme=0.050, alpha=0.25, val_nme=0.041),  # seed 1 chooses its own ratio
        _row("mixed", 50, 1, nme=0.040, alpha=0.50, val_nme=0.042),
        _row("mixed", 250, 0, nme=0.040, alpha=0.75, val_nme=0.030),
        _row("real_only", 50, 0, nme=0.060),
        _row("real_only", 250, 0, nme=np.nan, status="not run"),
    ]
    df = pd.DataFrame(rows)
    sel = report.select_mixing(df)
    mixed = sel[sel["strategy"] == "mixed"].set_index(["n_real", "seed"])["alpha"]
    assert mixed.to_dict() == {(50, 0): 0.5, (50, 1): 0.25, (250, 0): 0.75}
    assert list(sel.loc[sel["strategy"] == "real_only", "n_real"]) == [50]  # unfinished trials dropped
    trials = report.mixing_trials(df)
    assert len(trials) == 7 and trials["chosen"].sum() == 3
    assert set(trials["status"]) == {"ok", "stopped", "error"}


def test_bootstrap_interval_contains_the_point_narrows_with_less_noise_and_is_reproducible():
    widths = []
    for shape in (2.0, 50.0):  # gamma shape 50: per-face errors far less spread around their mean
        df, errors = _study(shape=shape)
        sel = report.select_mixing(df)
        boot = bootstrap.bootstrap(sel, errors, n_boot=400, seed=3)
        summary = report.summarize(df, boot)
        assert (summary["nme_lo"] <= summary["nme_mean"]).all()
        assert (summary["nme_mean"] <= summary["nme_hi"]).all()
        eq = report.real_equivalence(boot).set_index("strategy")
        pf = eq.loc["pretrain_finetune"]
        assert pf["real_equiv_lo"] <= pf["real_equiv"] <= pf["real_equiv_hi"]
        widths.append((summary["nme_hi"] - summary["nme_lo"]).to_numpy())
        again = bootstrap.bootstrap(sel, errors, n_boot=400, seed=3)
        np.testing.assert_array_equal(boot.samples, again.samples)
        assert not np.array_equal(boot.samples, bootstrap.bootstrap(sel, errors, n_boot=400, seed=4).samples)
    assert (widths[1] < widths[0]).all()


def test_bootstrap_is_paired_and_without_errors_resamples_seeds_only():
    df, errors = _study()
    sel = report.select_mixing(df)
    boot = bootstrap.bootstrap(sel, None, n_boot=200)
    assert boot.n_faces == 0 and boot.samples.shape == (200, len(boot.cells))
    # seeds only: every resampled mean is a weighted mean of the cell's 3 seed NMEs, within their range
    for c, (s, n) in enumerate(zip(boot.cells["strategy"], boot.cells["n_real"])):
        nme = sel.loc[(sel["strategy"] == s) & (sel["n_real"] == n), "nme"]
        assert nme.min() - 1e-12 <= boot.samples[:, c].min() and boot.samples[:, c].max() <= nme.max() + 1e-12
    with pytest.raises(ValueError, match="per-face test errors"):
        bootstrap.bootstrap(sel, {k: v for k, v in list(errors.items())[1:]})
    # paired: an arm that is another plus 0.005 on every face of every seed stays exactly 0.005 above it in
    # every resample (independent draws of seeds or faces per arm would scatter the difference)
    pf = sel[sel["strategy"] == "pretrain_finetune"]
    shifted = pf.assign(strategy="label_adaptation", nme=pf["nme"] + 0.005, run=pf["run"] + "-shifted")
    errors |= {r + "-shifted": errors[r] + 0.005 for r in pf["run"]}
    boot = bootstrap.bootstrap(pd.concat([sel, shifted], ignore_index=True), errors, n_boot=200)
    c = {s: i for i, s in enumerate(boot.cells["strategy"] + boot.cells["n_real"].astype(str))}
    diff = boot.samples[:, c["label_adaptation50"]] - boot.samples[:, c["pretrain_finetune50"]]
    np.testing.assert_allclose(diff, 0.005, atol=1e-12)
    assert boot.samples[:, c["pretrain_finetune50"]].std() > 0.001


# real-only: 0.045 at 250 faces. Pretraining + fine-tuning at 50 with mean NME 0.036 is worth ~800 (interval
# well above 250), 0.056 ~70 (well below), 0.045 ~250 (straddling).
@pytest.mark.parametrize(
    "pf_nme, status", [(0.036, "holds"), (0.056, "does not hold"), (0.045, "is undecided")]
)
def test_verdict_decides_by_the_interval(pf_nme, status):
    df, errors = _study(pf_nme=pf_nme)
    text, eq = _verdict(df, errors)
    assert text.startswith(
        f"{CLAIM} **{status}** for pretraining + fine-tuning: pretraining + fine-tuning "
        "with 50 real faces is worth "
    )
    pf = eq.set_index("strategy").loc["pretrain_finetune"]
    lo, hi = pf["real_equiv_lo"], pf["real_equiv_hi"]
    assert {"holds": lo >= 250, "does not hold": hi < 250, "is undecided": lo < 250 <= hi}[status]
    assert "Rule:" in text and "Mixing with 50 real faces is worth" in text  # the other arm at 50, named
    assert "Lowest mean test NME at each n_real: 0: data adaptation" in text


def test_verdict_says_what_is_missing():
    df, errors = _study()
    text, _ = _verdict(df[df["strategy"] != "real_only"], errors)
    assert text.startswith(f"{CLAIM} cannot be evaluated: real-only trials are needed")
    text, _ = _verdict(*_study(arms=("mixed",)))
    assert text.startswith(f"{CLAIM} cannot be evaluated: there are no pretraining + fine-tuning trials")
    text, _ = _verdict(*_study(real={10: 0.08, 50: 0.06, 100: 0.05}))
    assert text.startswith(f"{CLAIM} cannot be tested: the real-only trials reach only 100 real faces")
    text, _ = _verdict(df, errors, claim=(10, 250))
    assert text.startswith(
        'The claim "synthetic + 10 real faces >= 250 real faces" cannot be evaluated: '
        "pretraining + fine-tuning was not run at n_real = 10 (it was run at n_real = 50)"
    )


def test_write_report_files(tmp_path):
    df, errors = _study(pf_nme=0.036)
    stopped = _row("mixed", 50, 0, np.nan, alpha=0.75, val_nme=0.001, status="stopped")  # no errors entry
    df = pd.concat([df, pd.DataFrame([stopped])])
    df["ended_by"] = np.where(df["strategy"] == "real_only", "budget", "patience")
    paths = report_files.write_report(df, tmp_path, errors, n_boot=200)
    assert set(paths) == {
        "trials_csv",
        "summary_csv",
        "summary_md",
        "figure",
        "equivalence_csv",
        "mixing_csv",
        "verdict_md",
    }
    for p in paths.values():
        assert p.parent == tmp_path and p.exists() and p.stat().st_size > 0
    assert_drawn(read_png(paths["figure"]), (700, 1000), (750, 1100), min_colours=50)  # ~9 x 6.5 in, tight
    verdict = paths["verdict_md"].read_text().strip()
    md = paths["summary_md"].read_text()
    assert md.startswith(verdict) and verdict.startswith(f"{CLAIM} **holds**")
    assert "`real_only`" in md and "`pretrain_finetune`" in md and "| stopped |" in md
    summary = pd.read_csv(paths["summary_csv"])
    assert summary["seeds"].eq(3).all()
    assert summary.set_index("strategy").loc["mixed", "alpha_chosen"] == "0.5, 0.5, 0.5"
    # 3 seeds, none converged
    assert set(summary.loc[summary["strategy"] == "real_only", "ended_by"]) == {"budget 3"}
    assert len(pd.read_csv(paths["trials_csv"])) == len(df)
    assert len(pd.read_csv(paths["mixing_csv"])) == 7


def test_write_report_without_errors_or_real_only(tmp_path):
    df, _ = _study(pf_nme=0.036)
    paths = report_files.write_report(df[df["strategy"] != "real_only"], tmp_path)  # old callers: no errors
    assert "equivalence_csv" not in paths and "real-only trials are needed" in paths["verdict_md"].read_text()
    assert "seeds (3) only" in paths["summary_md"].read_text()


def test_point_equivalence_on_a_known_curve():
    # Real-only NME falls by 0.01 per doubling of n_real: 0.10 at 10, ..., 0.06 at 160. Pretraining +
    # fine-tuning with 10 real faces: per seed 0.075, 0.07, 0.065, mean 0.07 -> 80 real faces.
    rows = []
    for s in range(3):
        rows += [_row("real_only", n, s, 0.10 - 0.01 * k) for k, n in enumerate([10, 20, 40, 80, 160])]
        rows += [
            _row("pretrain_finetune", 10, s, 0.075 - 0.005 * s),
            _row("synthetic_only", 0, s, 0.20),
            _row("mixed", 20, s, 0.05, 0.5),
        ]
    boot = bootstrap.bootstrap(report.select_mixing(pd.DataFrame(rows)), n_boot=200)
    eq = report.real_equivalence(boot).set_index("strategy")
    assert eq.loc["pretrain_finetune", "real_equiv"] == pytest.approx(80)
    assert eq.loc["pretrain_finetune", "real_equiv_lo"] < 80 < eq.loc["pretrain_finetune", "real_equiv_hi"]
    assert eq.loc["synthetic_only", "real_equiv"] == 0.0 and eq.loc["mixed", "real_equiv"] == math.inf
    assert eq.loc["mixed", "real_equiv_lo"] == math.inf


def test_report_refuses_the_all_placeholder(tmp_path):
    df, errors = _study()
    df.loc[0, "n_real"] = -1
    with pytest.raises(ValueError, match="n_real = -1"):
        report_files.write_report(df, tmp_path, errors)


def _selection_study(
    methods: dict[str, float], val_offset: dict[str, float] | None = None, seeds=3, rng_seed=0
):
    """Trials of real only and pretraining + fine-tuning: random picks at 10 / 50 / 250 / 869 on a falling curve,
    and each method's picks at 10 / 50 / 250 with test NME = random's x methods[m] (val NME shifted by
    val_offset[m]); per-face errors gamma-distributed around each trial's mean."""
    rng = np.random.default_rng(rng_seed)
    curve = {10: 0.080, 50: 0.060, 250: 0.045, 869: 0.040}
    rows, errors = [], {}
    for seed in range(seeds):
        for strategy, k in (("real_only", 1.0), ("pretrain_finetune", 0.8)):
            for n, mean in curve.items():
                for m, factor in {"random": 1.0, **methods}.items():
                    if m != "random" and n == 869:
                        continue
                    run = f"{strategy}-{n}-{m}-{seed}"
                    errors[run] = e = rng.gamma(4.0, mean * k * factor / 4.0, FACES)
                    val = float(e.mean()) + (val_offset or {}).get(m, 0.0)
                    rows.append(
                        _row(strategy, n, seed, float(e.mean()), val_nme=val, run=run) | {"selection": m}
                    )
    return pd.DataFrame(rows), errors


def test_selection_table_and_verdict_choose_the_method_on_validation():
    from landmix import selection_report

    # hybrid is better on the test faces, but coverage looks better on the validation faces: coverage is chosen
    df, errors = _selection_study(
        {"coverage": 0.80, "hybrid": 0.70, "uncertainty": 1.25}, val_offset={"hybrid": 0.05}
    )
    table = selection_report.selection_table(df, errors, n_boot=300)
    assert set(table["method"]) == {"random", "coverage", "hybrid", "uncertainty"}  # losers listed too
    assert set(table["strategy"]) == {"real_only", "pretrain_finetune"}
    at50 = table[(table["strategy"] == "pretrain_finetune") & (table["n_real"] == 50)].set_index("method")
    assert at50.loc["coverage", "worth"] > 50 and at50.loc["coverage", "worth_lo"] > 50  # 0.8 x random at 50
    # worse than random
    assert at50.loc["uncertainty", "worth_hi"] < 50 and at50.loc["uncertainty", "diff_lo"] > 0
    assert at50.loc["coverage", "seeds"] == 3
    text, chosen = selection_report.verdict(table)
    assert chosen == "coverage" and "selection beats random here" in text
    df2, errors2 = _selection_study({"coverage": 1.0, "hybrid": 1.3}, rng_seed=1)
    text2, chosen2 = selection_report.verdict(selection_report.selection_table(df2, errors2, n_boot=300))
    assert chosen2 == "coverage" and "did not beat random" in text2


def test_write_report_keeps_the_arms_comparison_on_random_picks(tmp_path):
    df, errors = _selection_study({"coverage": 0.5})
    paths = report_files.write_report(df, tmp_path, errors, n_boot=200)
    summary = pd.read_csv(paths["summary_csv"])
    at50 = summary[(summary["strategy"] == "pretrain_finetune") & (summary["n_real"] == 50)]
    # random's 0.8 x 0.060, not coverage's mix
    assert at50["nme_mean"].iloc[0] == pytest.approx(0.048, rel=0.1)
    assert len(pd.read_csv(paths["trials_csv"])) == len(df)  # every trial is listed
    text = paths["summary_md"].read_text()
    assert "## Which real faces to label" in text and "selection_nme.png" in text
    assert "Which faces to label" in paths["verdict_md"].read_text()
    assert_drawn(
        read_png(paths["selection_figure"]), (300, 400), (400, 2000), min_colours=50
    )  # 4 in at 90 dpi
