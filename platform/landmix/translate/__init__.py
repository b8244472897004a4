"""Label translation between landmark conventions: a fixed table, or a fitted ridge map on top of it.

The fixed map is declarative (`FIXED_TABLES`): SYNTH70 -> IBUG68 keeps the 68 shared points and drops the two
pupils; the x-ray jaw stays an x-ray jaw. The learned translator closes the label gap the fixed map leaves (a
jaw projected from 3D vs a jaw drawn on the visible outline): a ridge map in pose-normalised coordinates,
exactly flip-equivariant. Three parts:

- `landmix.translate.translator`: the translators as data (`Translator`, `Chain`, `fixed`, `chain`), applied,
  saved as a versioned .npz and read back (`load`, `load_or_fixed`);
- `landmix.translate.ridge`: fitting the learned map (`fit`, its penalties `RIDGE_ALPHAS`, `OFFSET_ONLY`);
- `landmix.translate.procrustes`: the similarity alignment and mean shape the map works in.

    tr = fit(x_src, y_dst, SYNTH70, IBUG68)        # (N, 70, 2), (N, 68, 2) pixels
    y = tr(x)                                      # (N, 68, 2)
    tr.save("translator.npz"); tr = load("translator.npz"); tr.version  # "ridge-3f9a..."
    both = chain(tr, fit(model_pts, human_pts, IBUG68, IBUG68))   # stages applied in order, one artifact

A second, real-face stage is fitted from a synthetic-trained model's predictions on real faces by
`landmix.relabel.fit_translator` (`landmix fit-translator`) and chained after the first; this package
knows nothing of models or training.

A small MLP was not added: on the generator's paired conventions it measured worse overall than
the ridge map (it disturbs the inner points; docs/results/prepare.md).
"""

from landmix.translate.procrustes import align, mean_shape
from landmix.translate.ridge import OFFSET_ONLY, RIDGE_ALPHAS, fit
from landmix.translate.translator import (
    FIXED_TABLES,
    FORMAT_VERSION,
    Chain,
    Translator,
    chain,
    fixed,
    in_words,
    load,
    load_or_fixed,
    table_matrix,
)

__all__ = [
    "FIXED_TABLES",
    "FORMAT_VERSION",
    "OFFSET_ONLY",
    "RIDGE_ALPHAS",
    "Chain",
    "Translator",
    "align",
    "chain",
    "fit",
    "fixed",
    "in_words",
    "load",
    "load_or_fixed",
    "mean_shape",
    "table_matrix",
]
