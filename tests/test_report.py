"""The comparison report: real-image equivalence on constructed curves with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from landmix import report


def _curve_df():
    # Real-only NME falls by 0.01 per doubling of n_real: 0.10 at 10, 0.09 at 20, ..., 0.06 at 160.
    rows = []
    for seed in range(3):
        for k, n in enumerate([10, 20, 40, 80, 160]):
            rows.append(dict(strategy="real_only", n_real=n, alpha=np.nan, seed=seed, nme=0.10 - 0.01 * k))
        # pretrain+finetune with 10 real faces: per seed NME 0.075, 0.07, 0.065 -> 56.6, 80, 113.1 real faces
        rows.append(dict(strategy="pretrain_finetune", n_real=10, alpha=np.nan, seed=seed, nme=0.075 - 0.005 * seed))
        rows.append(dict(strategy="synthetic_only", n_real=0, alpha=np.nan, seed=seed, nme=0.20))
        rows.append(dict(strategy="mixed", n_real=20, alpha=0.5, seed=seed, nme=0.05))
    return pd.DataFrame(rows)


def test_equivalent_real_faces_interpolates_in_log_n():
    n, e = np.array([10, 20, 40]), np.array([0.10, 0.09, 0.08])
    assert report.equivalent_real_faces(0.09, n, e) == pytest.approx(20)
    assert report.equivalent_real_faces(0.085, n, e) == pytest.approx(math.sqrt(20 * 40))
    assert report.equivalent_real_faces(0.07, n, e) == math.inf  # better than every real-only point
    assert report.equivalent_real_faces(0.2, n, e) == 0.0  # worse than the fewest real faces


def test_equivalence_is_robust_to_a_non_monotone_real_curve():
    n, e = np.array([10, 20, 40]), np.array([0.10, 0.11, 0.08])  # noisy bump at 20
    # the running minimum flattens the bump: 0.09 lies halfway (in NME) between n=20 and n=40
    assert report.equivalent_real_faces(0.09, n, e) == pytest.approx(math.sqrt(20 * 40))


def test_real_equivalence_table_has_spread_over_seeds():
    eq = report.real_equivalence(_curve_df()).set_index("strategy")
    pf = eq.loc["pretrain_finetune"]
    assert pf["seeds"] == 3
    assert pf["real_equiv_median"] == pytest.approx(80, rel=1e-6)
    assert pf["real_equiv_min"] == pytest.approx(40 * 2 ** 0.5, rel=1e-6)
    assert pf["real_equiv_max"] == pytest.approx(80 * 2 ** 0.5, rel=1e-6)
    assert eq.loc["synthetic_only", "real_equiv_median"] == 0.0
    assert eq.loc["mixed", "real_equiv_median"] == math.inf


def test_write_report_files(tmp_path):
    paths = report.write_report(_curve_df(), tmp_path)
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    md = paths["summary_md"].read_text()
    assert "pretrain_finetune" in md and "> all tried" in md
    summary = pd.read_csv(paths["summary_csv"])
    assert summary["seeds"].eq(3).all()


def test_equivalence_without_real_only_trials_says_what_to_add():
    df = _curve_df()
    with pytest.raises(ValueError, match="real_only"):
        report.real_equivalence(df[df["strategy"] != "real_only"])


def test_report_refuses_the_all_placeholder(tmp_path):
    df = _curve_df()
    df.loc[0, "n_real"] = -1
    with pytest.raises(ValueError, match="n_real = -1"):
        report.write_report(df, tmp_path)
