"""Static listening pages: one ``index.html`` with its pictures and sounds beside it.

What the MIDI and audio reports (:mod:`midigenre.report`, :mod:`audiogenre.report`) share: the
HTML pieces, the style sheet, OGG Vorbis writing and the page's reading of numbers. The pages
are plain HTML and CSS — no script, no framework, nothing fetched — so they open from disk,
work offline and read on a phone. Every number a page shows from the report's JSON carries
``data-metric="<dotted path in report.json>"`` so a test (or a reader) can check one against
the other; the text is the value rounded for reading.
"""

from __future__ import annotations

import html
import math
import os
import struct
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from shared.errors import GenreError

#: The file that marks a folder as a listening report (``atomic_folder`` replaces only such folders, and
#: of them only the files listed in its ``"files"``).
REPORT_JSON = "report.json"

CSS = """
:root { --ink: #1b1b1b; --muted: #555; --line: #d0d0d0; --accent: #1f5fa8; --bg: #fff; --panel: #f5f6f8; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       line-height: 1.5; color: var(--ink); background: var(--bg); -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 72rem; padding: 0 1rem 3rem; }
a { color: var(--accent); }
a:focus, audio:focus, summary:focus { outline: 3px solid #f0b400; outline-offset: 2px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 1; }
header { border-bottom: 2px solid var(--line); margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: 1rem 0 .25rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 0 0 .25rem; }
.muted { color: var(--muted); font-size: .92rem; }
.song { background: var(--panel); border-radius: .5rem; padding: 1rem; margin: 1.25rem 0; }
.players { display: grid; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr)); gap: .75rem; margin: .75rem 0; }
.player { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: .4rem; padding: .5rem .75rem; }
.player figcaption { font-weight: 600; }
.player audio { width: 100%; display: block; margin: .25rem 0; }
.player .muted a { white-space: nowrap; }
figure.picture { margin: .75rem 0; }
figure.picture img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); background: #fff; }
figure.picture figcaption { font-size: .9rem; color: var(--muted); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .75rem 0; }
table { border-collapse: collapse; font-size: .92rem; background: #fff; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: right; vertical-align: top; }
th[scope=row], th.text, td.text { text-align: left; }
thead th { background: var(--panel); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.muted, figcaption { overflow-wrap: anywhere; }
.tables { display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
code { font-size: .9em; background: #eef0f3; padding: 0 .2em; border-radius: .2em; }
details { margin: .75rem 0; }
details pre { white-space: pre-wrap; font-size: .85rem; background: #fff; border: 1px solid var(--line); padding: .75rem; }
@media (max-width: 40rem) {
  body { padding: 0 .5rem 2rem; }
  h1 { font-size: 1.3rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .4rem; }
}
"""


class Html(str):
    """Text that is already HTML (inserted as it is where plain strings are escaped)."""


def esc(text) -> str:
    """``text`` made safe for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def finite(value) -> float | None:
    """``value`` as a float, or None where it is missing or not finite (JSON has no NaN)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def inline_markdown(text: str) -> Html:
    """Escaped ``text`` with Markdown's inline **strong**, *emphasis* and `code` turned into HTML
    (enough for a model card's opening paragraph)."""
    import re

    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?!\w)", r"<em>\1</em>", out)
    return Html(out)


def number_text(value, decimals: int = 3, *, scale: float = 1.0, unit: str = "") -> str:
    """A number rounded for reading (``value × scale`` to ``decimals`` places, then ``unit``); "—" when undefined."""
    v = finite(value)
    if v is None:
        return "—"
    return f"{v * scale:.{decimals}f}{unit}"


def metric(value, key: str, decimals: int = 3, *, scale: float = 1.0, unit: str = "", tag: str = "td") -> Html:
    """A table cell (or ``tag``) showing a number of report.json at dotted path ``key``."""
    extra = f' data-scale="{scale:g}"' if scale != 1.0 else ""
    return Html(f'<{tag} data-metric="{esc(key)}"{extra}>{esc(number_text(value, decimals, scale=scale, unit=unit))}</{tag}>')


def table(caption: str, header: Sequence[str], rows: Iterable[Sequence[str]], *, row_headers: bool = True) -> str:
    """An HTML table in a horizontally scrolling box. ``rows`` hold :class:`Html` cells (``<td>…``,
    e.g. from :func:`metric`) or plain strings (escaped into ``<td>``); with ``row_headers`` a
    plain first cell becomes ``<th scope="row">``."""
    head = "".join(f'<th scope="col"{" class=text" if i == 0 and row_headers else ""}>{esc(h)}</th>'
                   for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if isinstance(cell, Html):
                cells.append(cell)
            elif i == 0 and row_headers:
                cells.append(f'<th scope="row">{esc(cell)}</th>')
            else:
                cells.append(f"<td>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def facts(items: Iterable[tuple[str, str]]) -> str:
    """A definition list of (name, HTML value) pairs."""
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def png_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of a PNG file, read from its header."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        raise GenreError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def picture(folder: Path, rel: str, alt: str, caption: str = "") -> str:
    """A figure with a PNG of ``folder/rel``, its alt text and an optional visible caption."""
    w, h = png_size(folder / rel)
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return (f'<figure class="picture"><img src="{esc(rel)}" alt="{esc(alt)}" width="{w}" height="{h}">'
            f"{cap}</figure>")


def player(rel: str, label: str, seconds: float, ident: str, note: str = "") -> str:
    """An audio player with a visible label (its accessible name) and a download link."""
    extra = f" · {esc(note)}" if note else ""
    return (f'<figure class="player"><figcaption id="{esc(ident)}">{esc(label)}</figcaption>'
            f'<audio controls preload="metadata" src="{esc(rel)}" aria-labelledby="{esc(ident)}" '
            f'data-seconds="{seconds:.3f}">Your browser cannot play OGG Vorbis: '
            f'<a href="{esc(rel)}">download the file</a>.</audio>'
            f'<span class="muted">{seconds:.1f} s{extra} · <a href="{esc(rel)}" download>download</a></span></figure>')


def page(title: str, body: str, *, lang: str = "en", description: str = "") -> str:
    """The whole HTML document: style sheet inline, no script."""
    desc = f'<meta name="description" content="{esc(description)}">' if description else ""
    return ("<!doctype html>\n"
            f'<html lang="{esc(lang)}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n{desc}\n<style>{CSS}</style>\n</head>\n<body>\n"
            '<a class="skip" href="#main">Skip to the report</a>\n'
            f"{body}\n</body>\n</html>\n")


def write_ogg(path: str | os.PathLike, samples: np.ndarray, rate: int, *, quality: float = 0.7) -> float:
    """Write float audio ``(frames,)`` or ``(frames, channels)`` as OGG Vorbis; returns its seconds.

    ``quality`` is libsndfile's Vorbis compression level (0 best quality … 1 smallest file);
    0.7 keeps a rendered piano at about 30 kbit/s mono. Samples are clipped to [-1, 1].
    """
    import soundfile as sf

    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if x.ndim == 1:
        x = x[:, None]
    if len(x) == 0:
        raise GenreError(f"no audio to write to {path}")
    try:
        sf.write(str(path), x, int(rate), format="OGG", subtype="VORBIS", compression_level=quality)
    except TypeError:  # soundfile < 0.12 has no compression_level
        sf.write(str(path), x, int(rate), format="OGG", subtype="VORBIS")
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise GenreError(f"cannot write {path} as OGG Vorbis: {str(err).splitlines()[0]}") from None
    return len(x) / float(rate)


def finish_report(folder: Path, report: dict, started: float, page) -> dict:
    """The end of every report: time to build and size on disk into ``report``, then
    ``index.html`` (``page(report, folder)``) and ``report.json`` written into ``folder``;
    returns the JSON-ready report."""
    import time

    from shared.atomic import listed_files, write_json

    report["seconds_to_build"] = round(time.perf_counter() - started, 2)
    report["bytes"] = folder_bytes(folder)
    # the report's own files: a later report in the same folder replaces these and keeps the rest
    report["files"] = sorted({*listed_files(folder), "index.html", REPORT_JSON})
    report = json_ready(report)
    (folder / "index.html").write_text(page(report, folder), encoding="utf-8")
    write_json(folder / REPORT_JSON, report)
    return report


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def json_ready(obj):
    """``obj`` with NaN and infinities as None and numpy scalars as Python numbers (for report.json)."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return finite(obj)
    return obj


def lookup(report: dict, key: str):
    """The value at dotted path ``key`` (list items by number) of a report dict."""
    node = report
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


__all__ = ["CSS", "Html", "REPORT_JSON", "esc", "facts", "finite", "folder_bytes", "inline_markdown", "json_ready", "lookup", "metric",
           "number_text", "page", "picture", "player", "png_size", "table", "write_ogg"]
