"""MUSE-format dictionary files: one ``source target`` pair a line.
"""

from __future__ import annotations

from pathlib import Path

from dldiy_core import UserError, atomic_write_text, read_input


def read_dictionary(path: str | Path) -> list[tuple[str, str]]:
    """MUSE dictionary file: one ``source target`` pair a line (whitespace separated, utf-8)."""
    path = Path(path)
    try:
        text = read_input(path, "dictionary").decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not utf-8 ({e.reason} at byte {e.start})") from None
    pairs = []
    for lineno, line in enumerate(text.split("\n"), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise UserError(f"{path}:{lineno}: expected 'source target', got {line.strip()!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def write_dictionary(path: str | Path, pairs: list[tuple[str, str]]) -> Path:
    """Write pairs in MUSE format, atomically."""
    for s, t in pairs:
        if len(s.split()) != 1 or len(t.split()) != 1:
            raise UserError(f"{path}: pair {(s, t)!r} is not two single words")
    return atomic_write_text(path, "".join(f"{s} {t}\n" for s, t in pairs))
