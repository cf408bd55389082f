"""dldiy-catalyzer: "Spreading vectors for similarity search" (Sablayrolles, Douze, Schmid,
Jégou; arXiv 2018 / ICLR 2019).

A catalyzer MLP maps vectors to the unit sphere so that neighbours stay neighbours (triplet
rank loss) while points spread out evenly (KoLeo entropy regulariser); the outputs are then
coded on the spherical Zn lattice (16/32/64 bits) or by their signs (binary codes), and searched
with faiss. :class:`CatalyzerIndex` packages a trained catalyzer as a faiss-like index.
"""

from .config import PRESETS, CatalyzerConfig
from .index import CatalyzerIndex
from .koleo import koleo_loss
from .lattice import ZnCodec
from .models import Catalyzer
from .vecs import read_vecs, write_vecs

__all__ = ["PRESETS", "Catalyzer", "CatalyzerConfig", "CatalyzerIndex", "ZnCodec",
           "koleo_loss", "read_vecs", "write_vecs"]
