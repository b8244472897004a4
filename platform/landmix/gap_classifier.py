"""The real-vs-synthetic classifier of `landmix gap`: a fixed recipe (`ClassifierRecipe`, a 4-block CNN trained
from scratch), k-fold cross-validated so that every crop is scored by a model that never saw it; its held-out
accuracy, with Wilson intervals pooled over repeats, is the visual domain gap (50 % = indistinguishable).

    result = classify(real_crops, synthetic_crops, ClassifierRecipe(), seed=0)   # (N, S, S, 3) uint8 each
    summary = summarise([result, ...])                                           # pooled over repeats
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassifierRecipe:
    """The fixed recipe of the real-vs-synthetic classifier (change it and old gap figures no longer compare)."""

    folds: int = 5  # k-fold cross-validation: every crop is scored by a model that did not train on it
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 16  # channels of the first block; doubled per block (4 blocks, stride 2 each)


def _classifier(width: int):
    import torch.nn as nn

    layers, c_in = [], 3
    for k in range(4):
        c_out = width * 2 ** min(k, 2)
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
            nn.GroupNorm(4, c_out),
            nn.ReLU(),
        ]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1))


def _fit_predict(x_train, y_train, x_test, recipe: ClassifierRecipe, seed: int) -> np.ndarray:
    """Train one classifier on (N, 3, S, S) float tensors in [-1, 1] and labels (N,) 1 = synthetic;
    returns the probability of "synthetic" for each test crop."""
    import torch

    torch.manual_seed(seed)
    net = _classifier(recipe.width)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * math.ceil(len(x_train) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i : i + recipe.batch_size]
            xb = x_train[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5  # the mirror is the only augmentation
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0], y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        return torch.sigmoid(net(x_test)[:, 0]).numpy()


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pos, neg = p[y == 1], p[y == 0]
    return float(
        ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def classify(
    real: np.ndarray, synthetic: np.ndarray, recipe: ClassifierRecipe = ClassifierRecipe(), seed: int = 0
) -> dict:
    """Cross-validated real-vs-synthetic classification of two equal-sized crop sets (N, S, S, 3) uint8.

    Returns accuracy (both classes), accuracy_synthetic (share of synthetic crops called synthetic),
    accuracy_real, auc, n (crops per class) and the out-of-fold probabilities."""
    import torch

    if len(real) != len(synthetic) or len(real) < 2 * recipe.folds:
        raise ValueError(
            f"classify: needs equal crop counts per class, at least {2 * recipe.folds} each "
            f"(got {len(real)} real, {len(synthetic)} synthetic)"
        )
    x = torch.from_numpy(np.concatenate([real, synthetic])).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))].astype(np.float32)
    rng = np.random.default_rng(seed)
    fold = np.concatenate([rng.permutation(np.arange(len(real)) % recipe.folds) for _ in range(2)])
    prob = np.empty(len(y), np.float32)
    for k in range(recipe.folds):
        tr, te = fold != k, fold == k
        prob[te] = _fit_predict(x[tr], torch.from_numpy(y[tr]), x[te], recipe, seed * 100 + k)
    called = prob >= 0.5
    return {
        "accuracy": float((called == (y == 1)).mean()),
        "accuracy_synthetic": float(called[y == 1].mean()),
        "accuracy_real": float((~called[y == 0]).mean()),
        "auc": _auc(prob, y),
        "n": len(real),
        "prob": prob.tolist(),
        "label": y.astype(int).tolist(),
    }


def summarise(runs: list[dict]) -> dict:
    """Pooled figures over repeats: accuracy and accuracy_synthetic with Wilson intervals, AUC mean."""
    out = {"repeats": len(runs), "n": runs[0]["n"], "auc": float(np.mean([r["auc"] for r in runs]))}
    for key, n in (("accuracy", 2), ("accuracy_synthetic", 1), ("accuracy_real", 1)):
        k = int(round(sum(r[key] * r["n"] * n for r in runs)))
        total = sum(r["n"] * n for r in runs)
        out[key], out[f"{key}_ci"] = k / total, wilson(k, total)
    return out
