"""The schedule of a training run: the learning rate at each step, and rank 0's `Plan` of the epochs to run.

The plan keeps the best epoch by validation NME and says when to stop: after `train.epochs`, when validation
NME has not improved for `train.patience` epochs, or when `train.time_budget_s` is spent. Under a budget the
cosine schedule is laid over the epochs that fit in it (re-estimated from the median epoch after each one).
The plan travels in resume.pt, so a restarted run continues the same schedule.
"""

from __future__ import annotations

import math

import numpy as np

from landmix import config as C


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """The learning rate at `step` of `total`: linear warmup over `warmup` steps to `peak`, then cosine to 0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


class Plan:
    """Rank 0's running decision: the best epoch so far, and whether (and why) to stop. Travels in resume.pt."""

    def __init__(self, t: C.TrainConfig, state: dict | None = None):
        self.t = t
        state = state or {}
        self.best_nme = state.get("best_nme", math.inf)
        self.best_epoch = state.get("best_epoch", -1)
        self.epoch_s: list[float] = list(state.get("epoch_s", []))
        self.elapsed = state.get("elapsed", 0.0)
        self.planned = state.get("planned", t.epochs)  # epochs the cosine schedule spans
        self.stop_reason = state.get("stop_reason", "")

    def state(self) -> dict:
        return {
            "best_nme": self.best_nme,
            "best_epoch": self.best_epoch,
            "epoch_s": self.epoch_s,
            "elapsed": self.elapsed,
            "planned": self.planned,
            "stop_reason": self.stop_reason,
        }

    def after_epoch(self, epoch: int, seconds: float, val_nme: float | None) -> bool:
        """Record an epoch; True when it improved on the best validation NME (or there is no validation)."""
        self.epoch_s.append(seconds)
        self.elapsed += seconds
        improved = val_nme is None or val_nme < self.best_nme
        if improved:
            self.best_nme, self.best_epoch = (math.inf if val_nme is None else val_nme), epoch
        if self.t.time_budget_s:  # lay the schedule over the budget, from the median epoch so far
            typical = float(np.median(self.epoch_s))
            self.planned = min(
                self.t.epochs, epoch + 1 + int((self.t.time_budget_s - self.elapsed) // typical)
            )
        if epoch + 1 >= self.planned:
            self.stop_reason = "budget" if self.planned < self.t.epochs else "epochs"
        elif self.t.patience and epoch - self.best_epoch >= self.t.patience:
            self.stop_reason = "patience"
        return improved
