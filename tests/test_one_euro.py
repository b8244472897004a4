import numpy as np
import pytest

from landmix.one_euro import OneEuro, OneEuroParams, smooth_track

FPS = 30.0


def run(points, params=None):
    f = OneEuro(params)
    return np.stack([f(p, i / FPS, 1.0) for i, p in enumerate(points)])


def test_constant_input_passes_unchanged():
    pts = np.tile(np.array([[3.0, 4.0], [10.0, -2.0]]), (50, 1, 1))
    np.testing.assert_allclose(run(pts), pts)


def test_a_step_converges_and_lags_less_with_a_larger_beta():
    pts = np.zeros((90, 1, 2))
    pts[30:] = 1.0  # a jump of one face size at frame 30
    slow, fast = run(pts, OneEuroParams(beta=0.0)), run(pts, OneEuroParams(beta=5.0))
    assert abs(slow[-1, 0, 0] - 1) < 0.01 and abs(fast[-1, 0, 0] - 1) < 0.01
    reach = lambda out: int(np.argmax(out[:, 0, 0] > 0.9))  # noqa: E731
    assert 30 < reach(fast) < reach(slow)


def test_noise_variance_falls():
    noisy = np.random.default_rng(0).normal(0, 0.01, (300, 68, 2))
    assert run(noisy, OneEuroParams(min_cutoff=1.0, beta=0.3)).var() < 0.2 * noisy.var()
    assert run(noisy).var() < 0.7 * noisy.var()  # the defaults: a light touch


def test_a_track_restarts_after_a_frame_without_face_and_bad_parameters_say_so():
    pts = np.ones((5, 2, 2))
    pts[2] = np.nan
    pts[3:] = 7.0
    out = smooth_track(pts, np.arange(5) / FPS)
    assert np.isnan(out[2]).all() and (out[3] == 7.0).all()  # the new track starts where the face is
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroParams(min_cutoff=0)
