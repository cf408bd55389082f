"""dldiy-muse: "Word translation without parallel data" (Conneau, Lample, Ranzato, Denoyer,
Jégou; ICLR 2018).

Aligns two word-embedding spaces with an orthogonal map: adversarial training with no
dictionary at all, or Procrustes on a seed dictionary (supervised, or words spelled
identically), then iterative refinement on dictionaries induced with cross-domain similarity
local scaling (CSLS), selecting the map by an unsupervised criterion. CSLS runs in blocks with
faiss, so 200k x 200k vocabularies fit in memory.
"""

from .adversarial import adversarial
from .align import Alignment, fit_seed, refine
from .csls import csls_search
from .procrustes import procrustes

__all__ = ["Alignment", "adversarial", "csls_search", "fit_seed", "procrustes", "refine"]
