"""Image statistics of face crops, side by side per source: colour, contrast, the power spectrum's slope,
noise and sharpness (`image_stats`), their table (`stats_table`) and figure (`plot`). `landmix gap` reports them
beside its classifier (landmix.gap_classifier): the classifier says how far a source is from real photos, these say
where.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

STAT_NAMES = (
    "red",
    "green",
    "blue",
    "saturation",
    "contrast",
    "spectral_slope",
    "high_freq",
    "noise",
    "sharpness",
)


def _luma(crops: np.ndarray) -> np.ndarray:
    return crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # (N, S, S)


def radial_spectrum(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies (F,) cycles/pixel, log10 power (N, F)): the luminance's Hann-windowed power spectrum
    averaged over rings."""
    y = _luma(crops)
    s = y.shape[1]
    win = np.outer(np.hanning(s), np.hanning(s)).astype(np.float32)
    p = np.abs(np.fft.fftshift(np.fft.fft2((y - y.mean((1, 2), keepdims=True)) * win), axes=(1, 2))) ** 2
    yy, xx = np.indices((s, s)) - s // 2
    ring = np.round(np.hypot(yy, xx)).astype(int).ravel()
    f = np.arange(1, s // 2)
    counts = np.bincount(ring, minlength=s)[f]
    power = np.stack([np.bincount(ring, weights=pi.ravel(), minlength=s)[f] for pi in p]) / counts
    return f / s, np.log10(power + 1e-6)


def image_stats(crops: np.ndarray) -> dict[str, np.ndarray]:
    """Per-crop statistics (each (N,)): mean red/green/blue (0-255), HSV saturation (0-1), RMS contrast of
    the luminance (0-1), spectral slope (log-log fit of the power over 0.02-0.25 cycles/pixel), high-frequency
    share of the power (> 0.25 cycles/pixel), noise sigma (Immerkaer's estimate, grey levels) and sharpness
    (log10 variance of the Laplacian)."""
    rgb = crops.reshape(len(crops), -1, 3).astype(np.float32)
    sat = np.array([cv2.cvtColor(c, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255 for c in crops])
    y = _luma(crops)
    freq, logp = radial_spectrum(crops)
    band = (freq >= 0.02) & (freq <= 0.25)
    slope = np.polyfit(np.log10(freq[band]), logp[:, band].T, 1)[0]
    power = 10**logp * freq  # ring power x ring circumference
    high = power[:, freq > 0.25].sum(1) / power.sum(1)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    noise = (
        np.array([np.abs(cv2.filter2D(c, -1, kernel)[1:-1, 1:-1]).mean() for c in y])
        * math.sqrt(math.pi / 2)
        / 6
    )
    sharp = np.array([np.log10(cv2.Laplacian(c, cv2.CV_32F).var() + 1e-6) for c in y])
    return {
        "red": rgb[..., 0].mean(1),
        "green": rgb[..., 1].mean(1),
        "blue": rgb[..., 2].mean(1),
        "saturation": sat,
        "contrast": y.std((1, 2)) / 255,
        "spectral_slope": slope,
        "high_freq": high,
        "noise": noise,
        "sharpness": sharp,
    }


def stats_table(stats: dict[str, dict[str, np.ndarray]]) -> str:
    """Markdown: each statistic's median [interquartile range] per source, one column per source."""
    names = list(stats)
    rows = ["| statistic | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for s in STAT_NAMES:
        cells = []
        for name in names:
            q = np.percentile(stats[name][s], [25, 50, 75])
            fmt = "{:.3g}"
            cells.append(f"{fmt.format(q[1])} [{fmt.format(q[0])}, {fmt.format(q[2])}]")
        rows.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(
    crops: dict[str, np.ndarray], stats: dict[str, dict[str, np.ndarray]], path, per_source: int = 8
) -> None:
    """One figure: a row of crops per source, their mean radial power spectra, and the statistics' spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(crops)
    fig = plt.figure(figsize=(15, 6 + 1.9 * len(names)))
    grid = fig.add_gridspec(len(names) + 2, 5, height_ratios=[1.9] * len(names) + [3, 3])
    for r, name in enumerate(names):
        ax = fig.add_subplot(grid[r, :])
        row = crops[name][:per_source]
        ax.imshow(np.concatenate(list(row), axis=1))
        ax.set_axis_off()
        ax.set_title(name, fontsize=9, loc="left")
    ax = fig.add_subplot(grid[len(names) :, :2])
    for name in names:
        f, logp = radial_spectrum(crops[name])
        ax.plot(f, logp.mean(0), label=name)
    ax.set_xscale("log")
    ax.set_xlabel("cycles / pixel")
    ax.set_ylabel("log10 power (luminance)")
    ax.legend(fontsize=8)
    ax.set_title("radial power spectrum (mean)", fontsize=9)
    for i, s in enumerate(("saturation", "contrast", "spectral_slope", "noise", "sharpness", "high_freq")):
        ax = fig.add_subplot(grid[len(names) + i // 3, 2 + i % 3])
        ax.boxplot([stats[n][s] for n in names], showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), [n[:10] for n in names], fontsize=7)
        ax.set_title(s, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
