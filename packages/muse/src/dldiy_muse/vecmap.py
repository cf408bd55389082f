"""vecmap's multi-step mapping (Artetxe, Labaka, Agirre, "Generalizing and improving bilingual
word embedding mappings with a multi-step framework of linear transformations", AAAI 2018,
section 3): on the rows of a dictionary ``X [p, d]`` (source) and ``Z [p, d]`` (target),

1. whitening (optional): ``W_x1 = (X^T X)^{-1/2}``, ``W_z1 = (Z^T Z)^{-1/2}``;
2. orthogonal mapping: ``U S V^T = svd((X W_x1)^T (Z W_z1))``, ``W_x2 = U``, ``W_z2 = V``;
3. re-weighting: each side's columns scaled by ``S^p`` (``src_reweight``, ``trg_reweight``);
4. de-whitening (optional, each side by its own or the other's whitening):
   ``W_x2^T W_x1^{-1} W_x2`` (``src``) or ``W_z2^T W_z1^{-1} W_z2`` (``trg``).

Both spaces are transformed (``x -> x A^T``, ``z -> z B^T``), so the map is two-sided and in
general not orthogonal. Without whitening, re-weighting 0 and no de-whitening, ``x A^T`` and
``z B^T`` have the cosines of orthogonal Procrustes (eq. 2 of Conneau et al.). As in vecmap,
the steps are applied once, after self-learning / refinement, to the final dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEWHITEN = ("none", "src", "trg")


@dataclass
class VecmapSteps:
    whiten: bool = False
    src_reweight: float = 0.0
    trg_reweight: float = 0.0
    src_dewhiten: str = "none"
    trg_dewhiten: str = "none"

    @property
    def active(self) -> bool:
        return (self.whiten or self.src_reweight != 0 or self.trg_reweight != 0
                or self.src_dewhiten != "none" or self.trg_dewhiten != "none")


def whitening(m: np.ndarray) -> np.ndarray:
    """``(m^T m)^{-1/2}`` for ``m [p, d]`` (p >= d, full rank): ``[d, d]``, symmetric."""
    _, s, vt = np.linalg.svd(m.astype(np.float64), full_matrices=False)
    return (vt.T / s) @ vt


def vecmap_maps(x: np.ndarray, z: np.ndarray, steps: VecmapSteps
                ) -> tuple[np.ndarray, np.ndarray]:
    """The source and target maps ``A, B [d, d]`` (apply as ``src @ A.T``, ``tgt @ B.T``)
    fitted on the dictionary rows ``x, z [p, d]`` (row i of ``x`` translates to row i of
    ``z``)."""
    if steps.src_dewhiten not in DEWHITEN or steps.trg_dewhiten not in DEWHITEN:
        raise ValueError(f"de-whitening: expected one of {', '.join(DEWHITEN)}")
    if not steps.whiten and (steps.src_dewhiten != "none" or steps.trg_dewhiten != "none"):
        raise ValueError("de-whitening needs whitening (refine.whiten=true)")
    x, z = x.astype(np.float64), z.astype(np.float64)
    d = x.shape[1]
    wx1 = whitening(x) if steps.whiten else np.eye(d)
    wz1 = whitening(z) if steps.whiten else np.eye(d)
    u, s, vt = np.linalg.svd((x @ wx1).T @ (z @ wz1))
    wx2, wz2 = u, vt.T
    mx = wx1 @ wx2 * s ** steps.src_reweight  # columns scaled: right-multiplied by diag(S^p)
    mz = wz1 @ wz2 * s ** steps.trg_reweight
    back = {"src": wx2.T @ np.linalg.inv(wx1) @ wx2, "trg": wz2.T @ np.linalg.inv(wz1) @ wz2}
    if steps.src_dewhiten != "none":
        mx = mx @ back[steps.src_dewhiten]
    if steps.trg_dewhiten != "none":
        mz = mz @ back[steps.trg_dewhiten]
    return mx.T.astype(np.float32), mz.T.astype(np.float32)


SETTINGS: dict[str, VecmapSteps] = {
    "orthogonal": VecmapSteps(),
    "whiten": VecmapSteps(whiten=True),
    "whiten-dewhiten": VecmapSteps(whiten=True, src_dewhiten="src", trg_dewhiten="trg"),
    "vecmap-supervised": VecmapSteps(whiten=True, src_reweight=0.5, trg_reweight=0.5,
                                     src_dewhiten="src", trg_dewhiten="trg"),
}
"""Named step sets compared by ``dldiy-muse mapping``: the orthogonal map (Procrustes, as
Conneau et al.), whitening alone, whitening and de-whitening each side by its own (re-weighting
0), and vecmap's setting for its supervised mode (re-weighting 0.5 on both sides)."""
