"""Landmark conventions as data: one `Scheme` object per convention.

A scheme holds everything code needs to know about a set of points: how many there are,
which named groups they form, each point's mirror partner under a horizontal flip (0-based),
and the pair of points whose distance normalises the NME. Flipping, NME and label translation
read the scheme; nothing infers a convention from the number of points.

Orders follow iBUG 68, 0-based: 0-16 jaw, 17-21 / 22-26 brows (image left, then image right),
27-35 nose, 36-41 / 42-47 eyes, 48-67 mouth. FaceSynthetics adds two pupils: 68 sits in the
image-left eye (36-41), 69 in the image-right eye (42-47).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

_IBUG68_GROUPS = {
    "jaw": tuple(range(0, 17)),
    "brow_image_left": tuple(range(17, 22)),
    "brow_image_right": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_base": tuple(range(31, 36)),
    "eye_image_left": tuple(range(36, 42)),
    "eye_image_right": tuple(range(42, 48)),
    "mouth_outer": tuple(range(48, 60)),
    "mouth_inner": tuple(range(60, 68)),
}

# Named points of iBUG 68 (0-based) that shape measures read (landmix.descriptors); pairs are ordered
# image-left to image-right, or top to bottom.
_IBUG68_NAMED = {
    "nose_tip": (30,),
    "mouth_corners": (48, 54),
    "inner_lips": (62, 66),  # the inner lips' midpoints: top, bottom
    "eye_image_left_corners": (36, 39),
    "eye_image_left_upper_lid": (37, 38),
    "eye_image_left_lower_lid": (41, 40),  # below 37, 38
    "eye_image_right_corners": (42, 45),
    "eye_image_right_upper_lid": (43, 44),
    "eye_image_right_lower_lid": (47, 46),  # below 43, 44
}

# The horizontal-flip permutation of iBUG 68, 0-based (../shared/data/README.md).
_IBUG68_FLIP = (
    *range(16, -1, -1),
    *range(26, 16, -1),
    27,
    28,
    29,
    30,
    35,
    34,
    33,
    32,
    31,
    45,
    44,
    43,
    42,
    47,
    46,
    39,
    38,
    37,
    36,
    41,
    40,
    54,
    53,
    52,
    51,
    50,
    49,
    48,
    59,
    58,
    57,
    56,
    55,
    64,
    63,
    62,
    61,
    60,
    67,
    66,
    65,
)


@dataclass(frozen=True)
class Scheme:
    """One landmark convention.

    name: stable identifier stored in manifests and checkpoints ("ibug68", "synth70").
    num_points: K, the number of points of every face in this convention.
    groups: group name -> 0-based point indices; "image_left"/"image_right" groups mirror each other.
    flip_perm: flip_perm[i] is the index of point i's mirror partner (0-based); an involution.
    norm_pair: the two points whose distance normalises the NME (outer eye corners: image left, image right).
    named: point name -> its 0-based indices (nose tip, mouth corners, eye corners and lids), for shape measures.
    """

    name: str
    num_points: int
    groups: MappingProxyType
    flip_perm: tuple[int, ...]
    norm_pair: tuple[int, int]
    description: str = field(default="", compare=False)
    named: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def __post_init__(self):
        if len(self.flip_perm) != self.num_points:
            raise ValueError(
                f"{self.name}: flip_perm has {len(self.flip_perm)} entries, want {self.num_points}"
            )
        if sorted(self.flip_perm) != list(range(self.num_points)):
            raise ValueError(f"{self.name}: flip_perm is not a permutation of 0..{self.num_points - 1}")
        covered = sorted(i for idx in self.groups.values() for i in idx)
        if covered != list(range(self.num_points)):
            raise ValueError(f"{self.name}: groups must cover every point exactly once")
        if any(not 0 <= i < self.num_points for idx in self.named.values() for i in idx):
            raise ValueError(f"{self.name}: a named point lies outside 0..{self.num_points - 1}")

    @property
    def mirror_groups(self) -> dict[str, str]:
        """Group name -> the group its points flip onto (itself for groups on the midline)."""
        out = {}
        for name in self.groups:
            if "image_left" in name:
                out[name] = name.replace("image_left", "image_right")
            elif "image_right" in name:
                out[name] = name.replace("image_right", "image_left")
            else:
                out[name] = name
        return out

    def validate(self, pts: np.ndarray) -> None:
        """Raise ValueError unless pts has shape (..., K, 2) for this scheme."""
        if pts.ndim < 2 or pts.shape[-2:] != (self.num_points, 2):
            raise ValueError(
                f"{self.name} wants points of shape (..., {self.num_points}, 2), got {pts.shape}"
            )


def _scheme(name, groups, flip, description) -> Scheme:
    return Scheme(
        name=name,
        num_points=len(flip),
        groups=MappingProxyType(dict(groups)),
        flip_perm=tuple(int(i) for i in flip),
        norm_pair=(36, 45),
        description=description,
        named=MappingProxyType(dict(_IBUG68_NAMED)),
    )


IBUG68 = _scheme(
    "ibug68",
    _IBUG68_GROUPS,
    _IBUG68_FLIP,
    "iBUG / 300-W 68 points, human 2D annotation: the jaw follows the visible outline.",
)

SYNTH70 = _scheme(
    "synth70",
    {**_IBUG68_GROUPS, "pupil_image_left": (68,), "pupil_image_right": (69,)},
    (*_IBUG68_FLIP, 69, 68),
    "FaceSynthetics 70 points: iBUG 68 order projected from 3D ('x-ray' jaw) plus two pupils.",
)

SCHEMES: dict[str, Scheme] = {s.name: s for s in (IBUG68, SYNTH70)}


def get_scheme(name: str) -> Scheme:
    """The scheme called `name`; a clear error lists the known ones."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown landmark scheme {name!r}; known: {sorted(SCHEMES)}") from None


def flip_points(pts: np.ndarray, width: float, scheme: Scheme) -> np.ndarray:
    """Mirror points of an image `width` pixels wide, 0-based pixel centres: x -> width - 1 - x.

    pts: (..., K, 2) float. The indices are permuted through the scheme so that point i of the
    result is again the semantic point i (the image-left eye corner stays at index 36).
    """
    scheme.validate(pts)
    out = np.array(pts, dtype=np.float32, copy=True)
    out[..., 0] = (width - 1) - out[..., 0]
    return out[..., list(scheme.flip_perm), :]


def interocular(pts: np.ndarray, scheme: Scheme) -> np.ndarray:
    """Distance between the scheme's normalising pair. pts: (..., K, 2) -> (...)."""
    a, b = scheme.norm_pair
    return np.linalg.norm(pts[..., a, :] - pts[..., b, :], axis=-1)
