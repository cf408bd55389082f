"""The human study as a tool (Stock & Cissé sec. 3.2): a local HTML page shows each top-1
mistake with its image, true label and top-5 classes; a person marks it *acceptable* (the
prediction also describes the image: several objects, ambiguous or wrong label) or *not*; the
page saves the answers as JSON, and ``analyze`` turns them into rectified accuracy.

The page is one self-contained file (images copied beside it), works offline in any browser,
and saves through a download link (``answers.json``), so nothing needs a server.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dldiy_core import UserError, atomic_write_text

SCRIPT = """
const answers = {};
function mark(id, value) {
  answers[id] = value;
  const card = document.getElementById('m' + id);
  card.dataset.answer = value ? 'acceptable' : 'wrong';
  document.getElementById('count').textContent = Object.keys(answers).length;
}
function answersJson() {
  return JSON.stringify({study: STUDY, answers: answers}, null, 1);
}
function save() {
  const blob = new Blob([answersJson()], {type: 'application/json'});
  const a = document.getElementById('download');
  a.href = URL.createObjectURL(blob);
  a.download = 'answers.json';
  a.click();
}
"""

STYLE = """body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222}
.card{display:inline-block;vertical-align:top;width:260px;margin:.5em;padding:.5em;
border:2px solid #ddd;border-radius:6px}.card img{width:224px;height:224px;object-fit:contain}
.card[data-answer=acceptable]{border-color:#2a2}.card[data-answer=wrong]{border-color:#c22}
ol{padding-left:1.4em;margin:.3em 0}button{margin:.2em}.bar{position:sticky;top:0;
background:#fff;padding:.5em 0;border-bottom:1px solid #ddd}"""


def write_study(recs: Sequence[Mapping[str, Any]], out: str | Path, *, study_id: str,
                max_items: int = 0) -> Path:
    """Write ``out/index.html`` and ``out/images/`` for the top-1 mistakes in ``recs``."""
    out = Path(out)
    mistakes = [r for r in recs if not r["top1_ok"]]
    if max_items:
        mistakes = mistakes[:max_items]
    if not mistakes:
        raise UserError("no top-1 mistakes to study")
    (out / "images").mkdir(parents=True, exist_ok=True)
    cards = []
    for r in mistakes:
        src = Path(r["path"])
        name = f"{r['id']:05d}{src.suffix.lower()}"
        shutil.copyfile(src, out / "images" / name)
        top = "".join(f"<li>{html.escape(t['name'])} <small>({t['p']:.2f})</small></li>"
                      for t in r["top"])
        cards.append(
            f'<div class="card" id="m{r["id"]}" data-answer="">'
            f'<img src="images/{name}" alt="image {r["id"]}">'
            f'<div>label: <b>{html.escape(r["label"])}</b></div>'
            f"<div>model's top-5:</div><ol>{top}</ol>"
            f'<button class="ok" onclick="mark({r["id"]}, true)">acceptable</button>'
            f'<button class="no" onclick="mark({r["id"]}, false)">not acceptable</button></div>')
    body = (f'<div class="bar">Is the model\'s first answer an acceptable description of the '
            f'image? Answered <span id="count">0</span> of {len(mistakes)}. '
            f'<button id="save" onclick="save()">save answers.json</button>'
            f'<a id="download" style="display:none">download</a></div>\n' + "\n".join(cards))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Which mistakes are acceptable?</title><style>{STYLE}</style>"
            f"<script>const STUDY = {json.dumps(study_id)};{SCRIPT}</script></head>"
            f"<body><h1>Which mistakes are acceptable?</h1>\n{body}\n</body></html>\n")
    atomic_write_text(out / "study.json", json.dumps(
        {"study": study_id, "records": list(recs)}, indent=1) + "\n")
    return atomic_write_text(out / "index.html", page)


def read_answers(path: str | Path, study_id: str | None = None) -> dict[int, bool]:
    """``answers.json`` saved by the page -> ``{record id: acceptable}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: answers file not found") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable answers JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        raise UserError(f"{path}: expected {{\"study\": ..., \"answers\": {{id: true|false}}}}")
    if study_id is not None and data.get("study") != study_id:
        raise UserError(f"{path}: answers of study {data.get('study')!r}, not {study_id!r}")
    out = {}
    for k, v in data["answers"].items():
        if not str(k).isdigit() or not isinstance(v, bool):
            raise UserError(f"{path}: answer {k!r}: {v!r} (expected an image id and true/false)")
        out[int(k)] = v
    return out


def read_study(folder: str | Path) -> tuple[str, list[dict[str, Any]]]:
    """The study id and records written by :func:`write_study`."""
    path = Path(folder) / "study.json"
    try:
        data = json.loads(path.read_text())
        return data["study"], data["records"]
    except FileNotFoundError:
        raise UserError(f"{path}: not found (is {folder} a study folder?)") from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a study file ({e})") from None
