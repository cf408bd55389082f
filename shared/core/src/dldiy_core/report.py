"""Run reports: ``report.md`` + ``index.html`` + ``summary.json`` with PNG plots, tables, WAVs.

All links are relative, so a report folder can be moved, zipped or served as it is.
``summary.json`` (title, headline figures, media) is what ``tools/demo`` collects into one page.
"""

from __future__ import annotations

import html
import json
import math
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_path, atomic_write_text

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{
text-align:left}figure{display:inline-block;margin:.5em}img{max-width:100%;border:1px solid #eee}
.headline{display:flex;flex-wrap:wrap;gap:1em}.headline div{background:#f6f8fa;padding:.6em 1em;
border-radius:6px}.headline b{display:block;font-size:1.3em}section{margin-bottom:2em}
figcaption{font-size:.9em;color:#555}table.text td{text-align:left}"""


def fmt(value: Any) -> str:
    """Short human form of a table cell or figure."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v) or v == 0:
            return str(v)
        return f"{v:.4g}" if 1e-3 <= abs(v) < 1e6 else f"{v:.3e}"
    return str(value)


def html_page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "",
               cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>\n"
                   for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    attr = f' class="{html.escape(cls)}"' if cls else ""
    return f"<table{attr}>{cap}<tr>{head}</tr>\n{body}</table>"


def html_headlines(figures: Mapping[str, Any]) -> str:
    cells = "".join(f"<div><b>{html.escape(fmt(v))}</b>{html.escape(k)}</div>"
                    for k, v in figures.items())
    return f'<div class="headline">{cells}</div>'


def html_media(kind: str, src: str, caption: str) -> str:
    src, cap = html.escape(src), html.escape(caption)
    tag = (f'<img src="{src}" alt="{cap}">' if kind == "image"
           else f'<audio controls preload="metadata" src="{src}"></audio>')
    return f"<figure>{tag}<figcaption>{cap}</figcaption></figure>"


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM WAV from float samples in [-1, 1] (``audio: [T]`` or ``[C, T]``)."""
    x = np.asarray(audio, dtype=np.float64)
    x = x[None] if x.ndim == 1 else x
    pcm = (np.clip(np.nan_to_num(x), -1, 1) * 32767).round().astype("<i2").T
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return Path(path)


@dataclass
class _Block:
    md: str
    html: str


@dataclass
class Report:
    """Collect blocks, then :meth:`write` them; media files land in ``out_dir`` directly.

    >>> r = Report("runs/x", "MLP demo"); r.headline("test accuracy", 0.97)
    >>> r.line_plot("loss", {"train": (steps, losses)}, xlabel="step"); r.write()
    """

    out_dir: Path
    title: str
    headlines: dict[str, Any] = field(default_factory=dict)
    blocks: list[_Block] = field(default_factory=list)
    media: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def headline(self, name: str, value: Any) -> None:
        """A key figure, shown on top and collected by ``tools/demo``."""
        self.headlines[name] = value

    def section(self, title: str) -> None:
        self.blocks.append(_Block(f"## {title}\n", f"<h2>{html.escape(title)}</h2>"))

    def text(self, text: str) -> None:
        paras = [p.strip() for p in text.strip().split("\n\n") if p.strip()]
        self.blocks.append(_Block(text.strip() + "\n",
                                  "".join(f"<p>{html.escape(p)}</p>" for p in paras)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]],
              caption: str = "") -> None:
        md = ([f"*{caption}*", ""] if caption else []) + [
            "| " + " | ".join(map(str, headers)) + " |",
            "|" + "---|" * len(headers)] + [
            "| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
        self.blocks.append(_Block("\n".join(md) + "\n", html_table(headers, rows, caption)))

    def _media(self, kind: str, name: str, caption: str) -> None:
        self.media.append({"kind": kind, "path": name, "caption": caption})
        self.blocks.append(_Block(
            f"![{caption}]({name})\n" if kind == "image" else f"[{caption}]({name})\n",
            html_media(kind, name, caption)))

    def attach(self, file: str, caption: str = "", kind: str = "image") -> None:
        """Show a file the caller wrote into the report folder: ``kind`` "image" (an
        animated GIF, a JPEG...) or "audio" (a player)."""
        if kind not in ("image", "audio"):
            raise ValueError(f"attach: kind {kind!r} is not 'image' or 'audio'")
        if not (self.out_dir / file).is_file():
            raise FileNotFoundError(f"{self.out_dir / file}: no such report file")
        self._media(kind, file, caption or file)

    def figure(self, name: str, fig: Any, caption: str = "") -> None:
        """Save a matplotlib figure as ``name.png``."""
        import matplotlib.pyplot as plt

        file = f"{name}.png"
        with atomic_path(self.out_dir / file) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        self._media("image", file, caption or name)

    def line_plot(self, name: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                  *, xlabel: str = "", ylabel: str = "", caption: str = "",
                  logx: bool = False, logy: bool = False) -> None:
        """One line per ``label: (x, y)``."""
        fig, ax = new_figure()
        for label, (x, y) in series.items():
            ax.plot(x, y, label=label)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=caption or name)
        ax.set_xscale("log" if logx else "linear")
        ax.set_yscale("log" if logy else "linear")
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend()
        self.figure(name, fig, caption)

    def image(self, name: str, image: np.ndarray, caption: str = "") -> None:
        """Save ``image: [H, W]`` or ``[H, W, 3|4]`` (uint8 or floats in [0, 1]) as PNG."""
        import matplotlib.image

        file = f"{name}.png"
        with atomic_path(self.out_dir / file) as tmp:
            matplotlib.image.imsave(tmp, np.asarray(image), format="png",
                                    cmap="gray" if np.asarray(image).ndim == 2 else None)
        self._media("image", file, caption or name)

    def audio(self, name: str, audio: np.ndarray, sample_rate: int, caption: str = "") -> None:
        """Save ``audio: [T]`` or ``[C, T]`` as a WAV with a player."""
        file = f"{name}.wav"
        write_wav(self.out_dir / file, audio, sample_rate)
        self._media("audio", file, caption or name)

    def write(self) -> Path:
        """Write ``report.md``, ``index.html`` and ``summary.json``; returns the HTML path."""
        heads = ("\n".join(f"- **{k}**: {fmt(v)}" for k, v in self.headlines.items()) + "\n"
                 if self.headlines else "")
        md = f"# {self.title}\n\n{heads}\n" + "\n".join(b.md for b in self.blocks)
        body = (html_headlines(self.headlines) if self.headlines else "") + "\n".join(
            b.html for b in self.blocks)
        summary = {"title": self.title, "headlines": _plain(self.headlines), "media": self.media}
        atomic_write_text(self.out_dir / "report.md", md)
        atomic_write_text(self.out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return atomic_write_text(self.out_dir / "index.html", html_page(self.title, body))


def new_figure(width: float = 6.0, height: float = 4.0, rows: int = 1, cols: int = 1,
               **kwargs: Any) -> tuple[Any, Any]:
    """A matplotlib figure on the headless Agg backend (no display needed); with ``rows`` or
    ``cols`` above 1, an array of axes (``kwargs`` go to ``plt.subplots``, e.g. ``sharex``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width, height), **kwargs)


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
