"""Listening reports for the audio path: what ``genre audio transform`` did to a recording, and
(a hook for) the transcription bridge.

``genre audio transform SONG.wav -o OUT.wav`` writes ``OUT.wav.json`` beside its output
(:func:`write_transform_record`): the source's path and hash, the classifier, the settings and
the per-window report. :func:`build_transform_report` reads both files and writes a folder with
``index.html``: before and after players, the change alone (amplified, so it can be heard),
spectrograms of the music and of the change on one scale, p(target) per window and the SNR.

:func:`build_bridge_report` makes the page of a transcription-bridge folder — recording,
transcription, transferred transcription — from files with known names (:data:`BRIDGE_FILES`).
It reads MIDI, like :mod:`audiogenre.phrase_fad` and :mod:`audiogenre.render`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from audiogenre.audio import file_sha1
from shared.errors import GenreError

#: The record ``genre audio transform`` leaves beside its output: ``OUT.wav`` → ``OUT.wav.json``.
RECORD_SUFFIX = ".json"
RECORD_KIND = "audio-transform"
DEFAULT_MAX_SECONDS = 30.0


def transform_record_path(output: str | os.PathLike) -> Path:
    """Where the record of the transformation that wrote ``output`` is (``OUT.wav.json``)."""
    return Path(str(output) + RECORD_SUFFIX)


def write_transform_record(output: str | os.PathLike, *, source: str | os.PathLike, classifier: str, target: str,
                           config, report) -> Path:
    """Write ``OUT.wav.json`` beside a transformation's output: what :func:`build_transform_report` reads."""
    from shared.atomic import write_json

    path = transform_record_path(output)
    write_json(path, {
        "format": 1, "kind": RECORD_KIND, "source": str(Path(source).resolve()), "source_sha1": file_sha1(source),
        "output": Path(output).name, "output_sha1": file_sha1(output), "classifier": str(classifier), "target": target,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config),
        "report": report.to_dict() if hasattr(report, "to_dict") else dict(report),
    })
    return path


def is_transform_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file with a transformation record beside it."""
    p = Path(path)
    return p.is_file() and transform_record_path(p).is_file()


def read_transform_record(output: str | os.PathLike) -> dict:
    """The checked record of the transformation that wrote ``output``."""
    path = transform_record_path(output)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise GenreError(f"cannot read {path} ({str(err).splitlines()[0]})") from None
    if not isinstance(rec, dict) or rec.get("kind") != RECORD_KIND or not isinstance(rec.get("report"), dict):
        raise GenreError(f"{path} is not the record of `genre audio transform` (write it again with that command)")
    src = Path(rec.get("source", ""))
    if not src.is_file():
        raise GenreError(f"the source recording {src} named in {path} is not here any more")
    if rec.get("source_sha1") and file_sha1(src) != rec["source_sha1"]:
        raise GenreError(f"{src} has changed since it was transformed into {output}; transform it again")
    if rec.get("output_sha1") and file_sha1(output) != rec["output_sha1"]:
        raise GenreError(f"{output} has changed since `genre audio transform` wrote it; transform again")
    return rec


# ----------------------------------------------------------------------------- measuring


def _mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) if x.ndim == 2 else x


def spectrogram(x: np.ndarray, rate: int, n_fft: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrogram of mono ``x`` (Hann window, hop n_fft/4): ``(power (F, T), freqs (F,), times (T,))``."""
    hop = n_fft // 4
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    n = 1 + (len(x) - n_fft) // hop
    win = np.hanning(n_fft).astype(np.float32)
    frames = np.lib.stride_tricks.as_strided(x, (n, n_fft), (x.strides[0] * hop, x.strides[0]))
    power = np.abs(np.fft.rfft(frames * win, axis=1)).T ** 2
    return power, np.fft.rfftfreq(n_fft, 1.0 / rate), (np.arange(n) * hop + n_fft / 2) / rate


def energy_band(power: np.ndarray, freqs: np.ndarray, share: float = 0.8) -> tuple[float, float]:
    """The frequency band (Hz) holding the central ``share`` of the energy in ``power`` (F, T)."""
    per = power.sum(axis=1)
    if per.sum() <= 0:
        return 0.0, 0.0
    c = np.cumsum(per) / per.sum()
    lo = float(freqs[np.searchsorted(c, (1 - share) / 2)])
    hi = float(freqs[min(len(freqs) - 1, np.searchsorted(c, 1 - (1 - share) / 2))])
    return lo, hi


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float | None:
    """10·log10(Σ signal² / Σ noise²); None where there is no noise (infinite)."""
    n = float(np.sum(np.square(noise, dtype=np.float64)))
    s = float(np.sum(np.square(signal, dtype=np.float64)))
    return None if n == 0 else 10 * math.log10(max(s, 1e-30) / n)


def plot_spectrograms(src: np.ndarray, change: np.ndarray, rate: int, path: Path) -> tuple[float, float]:
    """Spectrograms of the music and of the change on one dB scale (the music's loudest cell = 0 dB);
    returns the band holding 80 % of the change's energy."""
    from shared.plotting import new_figure, save_png

    ps, f, t = spectrogram(_mono(src), rate)
    pc, _, _ = spectrogram(_mono(change), rate)
    ref = max(float(ps.max()), 1e-20)
    fig, axes = new_figure(2, 1, figsize=(9, 5.4), sharex=True)
    top = min(rate / 2, 11025.0)
    for ax, p, title in ((axes[0], ps, "the original"), (axes[1], pc, "the change (after − before), same scale")):
        im = ax.pcolormesh(t, f / 1000, 10 * np.log10(np.maximum(p / ref, 1e-12)), vmin=-100, vmax=0, cmap="magma",
                           shading="auto", rasterized=True)
        ax.set_ylim(0, top / 1000)
        ax.set_ylabel("kHz")
        ax.set_title(title, fontsize=10, loc="left")
    axes[1].set_xlabel("seconds")
    fig.colorbar(im, ax=list(axes), label="dB (re the original's loudest cell)", shrink=0.9)
    save_png(fig, path, dpi=72)
    return energy_band(pc, f)


def plot_windows(windows: list[dict], target: str, target_prob: float | None, path: Path) -> None:
    """p(target) per window before and after, as bars."""
    from shared.plotting import new_figure, save_png

    n = len(windows)
    fig, ax = new_figure(figsize=(min(12, 3 + 0.5 * n), 3.0))
    xs = np.arange(n)
    ax.bar(xs - 0.2, [w["p_before"] for w in windows], 0.4, label="before", color="0.6")
    ax.bar(xs + 0.2, [w["p_after"] for w in windows], 0.4, label="after", color="tab:blue")
    if target_prob:
        ax.axhline(target_prob, color="tab:red", lw=1, ls="--", label=f"target {target_prob:g}")
    ax.set_xticks(xs, [f"{w['start']:.0f}–{w['end']:.0f} s" for w in windows], fontsize=7, rotation=45 if n > 8 else 0)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(f"p({target})")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_png(fig, path, dpi=80)


# ----------------------------------------------------------------------------- the transform report


def build_transform_report(output: str | os.PathLike, out: str | os.PathLike, *,
                           max_seconds: float = DEFAULT_MAX_SECONDS, progress=None) -> dict:
    """Write the listening report of ``genre audio transform``'s ``output`` into the folder ``out``.

    Plays and draws the first ``max_seconds``; the numbers of the whole song come from the record.
    """
    from audiogenre.audio import load_audio
    from shared.atomic import atomic_folder
    from shared.listening import REPORT_JSON, finish_report, write_ogg
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    started = time.perf_counter()
    output = Path(output)
    rec = read_transform_record(output)
    before = load_audio(rec["source"], duration=max_seconds)
    after = load_audio(output, duration=max_seconds)
    if before.rate != after.rate or before.channels != after.channels or len(before.samples) != len(after.samples):
        raise GenreError(f"{output} does not match its source {rec['source']} (rate, channels or length differ)")
    tr = rec["report"]
    scale = float(tr.get("output_scale", 1.0))
    change = after.samples - before.samples * np.float32(scale)
    with atomic_folder(out, marker=REPORT_JSON, keep_others=True) as tmp:
        (tmp / "audio").mkdir()
        (tmp / "img").mkdir()
        report_progress("report", 0, 4)
        audio = {}
        # a float recording above full scale is played quieter (both alike) rather than clipped
        loudest = max(float(np.abs(before.samples).max()), float(np.abs(after.samples).max()))
        level = 1.0 / loudest if loudest > 1.0 else 1.0
        for name, x in (("before", before.samples), ("after", after.samples)):
            rel = f"audio/{name}.ogg"
            audio[name] = {"file": rel, "seconds": round(write_ogg(tmp / rel, x * np.float32(level), before.rate), 4),
                           "rate": before.rate, "gain_db": 20 * math.log10(level)}
        peak = float(np.abs(change).max())
        gain_db = 20 * math.log10(0.5 / peak) if peak > 0 else None
        rel = "audio/change.ogg"
        audio["change"] = {"file": rel, "rate": before.rate, "gain_db": gain_db,
                           "seconds": round(write_ogg(tmp / rel, change * (0.5 / peak if peak > 0 else 1.0), before.rate), 4)}
        report_progress("report", 1, 4)
        # what the page's players lose to Vorbis, against what the transformation changed
        import soundfile as sf

        heard, _ = sf.read(str(tmp / audio["before"]["file"]), dtype="float32", always_2d=True)
        m = min(len(heard), len(before.samples))
        played = before.samples[:m] * np.float32(level)
        codec = snr_db(played, heard[:m, : before.channels] - played)
        band = plot_spectrograms(before.samples, change, before.rate, tmp / "img" / "spectrogram.png")
        report_progress("report", 2, 4)
        windows = tr.get("windows") or []
        if windows:
            plot_windows(windows, rec["target"], (rec.get("config") or {}).get("target_prob"), tmp / "img" / "windows.png")
        report_progress("report", 3, 4)
        report = {
            "format": 1, "kind": "audio-transform-report",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "package_version": _version(),
            "source": rec["source"], "output": str(output.resolve()), "classifier": rec.get("classifier"),
            "target": rec["target"], "config": rec.get("config") or {}, "transform": tr,
            "excerpt": {"seconds": len(before.samples) / before.rate, "of": tr.get("seconds"),
                        "snr_db": snr_db(before.samples, change), "codec_snr_db": codec,
                        "change_band_hz": list(band)},
            "audio": audio, "pictures": {"spectrogram": "img/spectrogram.png",
                                         "windows": "img/windows.png" if windows else None},
        }
        report = finish_report(tmp, report, started, transform_page)
        report_progress("report", 4, 4)
    return report


def _version() -> str:
    from shared.version import __version__

    return __version__


def transform_page(report: dict, folder: Path) -> str:
    """The ``index.html`` of a transformation report."""
    from shared.listening import Html, esc, facts, metric, number_text, page, picture, player, table

    tr, cfg, ex, target = report["transform"], report["config"], report["excerpt"], report["target"]
    name = Path(report["source"]).name
    title = f"Listening report: {name} → {target}"
    windows = tr.get("windows") or []
    played = f"the first {ex['seconds']:.1f} s" + (f" of {tr['seconds']:.1f} s" if tr.get("seconds") else "")
    parts = ["<header>", f"<h1>{esc(title)}</h1>",
             f'<p class="muted">Gradient-guided transformation (genre audio transform) toward <strong>{esc(target)}</strong>; '
             f"made {esc(report['created'].replace('T', ' ').replace('+00:00', ' UTC'))} by genre-transfer "
             f"{esc(report['package_version'])}. Players and pictures: {esc(played)}.</p>", "</header>",
             '<main id="main">', '<section aria-labelledby="listen-h"><h2 id="listen-h">Listen</h2>']
    au = report["audio"]
    gain = au["change"].get("gain_db")
    level = au["before"].get("gain_db") or 0.0
    quieter = f"played {-level:.1f} dB quieter: the file goes above full scale" if level < 0 else ""
    parts.append('<div class="players">'
                 + player(au["before"]["file"], "Before (the original)", au["before"]["seconds"], "before", quieter)
                 + player(au["after"]["file"], f"After (toward {target})", au["after"]["seconds"], "after", quieter)
                 + player(au["change"]["file"], "The change alone (after − before)", au["change"]["seconds"], "change",
                          f"amplified by {gain:.0f} dB" if gain is not None else "silent: nothing changed")
                 + "</div>")
    codec, snr = ex.get("codec_snr_db"), tr.get("snr_db")
    if codec is not None and snr is not None and codec < snr:
        parts.append(f'<p>The players are OGG Vorbis, whose own coding noise here ({number_text(codec, 1)} dB below the '
                     f"music) is louder than the change ({number_text(snr, 1)} dB below it): before and after may sound "
                     "the same through them; the change alone is what was added. The numbers are measured on the "
                     "uncompressed files.</p>")
    parts.append("</section>")
    parts.append('<section aria-labelledby="numbers-h"><h2 id="numbers-h">What changed</h2>')
    parts.append(table("The whole song", ["measure", "before", "after"], [
        [f"p({target}), mean over windows", metric(tr.get("p_before"), "transform.p_before"), metric(tr.get("p_after"), "transform.p_after")],
        ["most likely genre", tr.get("genre_before", "?"), tr.get("genre_after", "?")],
    ]))
    parts.append(table("The change", ["measure", "value"], [
        ["SNR of the change, whole song (dB)", metric(snr, "transform.snr_db", 1)],
        ["SNR of the change, played part (dB)", metric(ex.get("snr_db"), "excerpt.snr_db", 1)],
        [f"windows now classified {target}", metric(tr.get("success"), "transform.success", 0, scale=100, unit=" %")],
        ["SNR of the players' Vorbis coding (dB)", metric(codec, "excerpt.codec_snr_db", 1)],
    ]))
    lo, hi = ex.get("change_band_hz") or (0, 0)
    parts.append(picture(folder, report["pictures"]["spectrogram"],
                         f"Two spectrograms, time from left to right and frequency up to {min(tr.get('rate', 22050) / 2, 11025) / 1000:.0f} kHz "
                         f"from bottom to top, on one decibel scale: the original music above, the change below; "
                         f"80 % of the change's energy lies between {lo:.0f} and {hi:.0f} Hz and the change is "
                         f"{number_text(ex.get('snr_db'), 1)} dB below the music.",
                         "Spectrograms of the original and of the change, on one scale."))
    if windows:
        alt = (f"Bar chart of p({target}) in each of the {len(windows)} windows, before in grey and after in blue: "
               + "; ".join(f"{w['start']:.0f}–{w['end']:.0f} s {w['p_before']:.2f} to {w['p_after']:.2f}" for w in windows[:12])
               + (" …" if len(windows) > 12 else "") + ".")
        parts.append(picture(folder, report["pictures"]["windows"], alt, f"p({target}) per window, before and after."))
        rows = []
        for i, w in enumerate(windows):
            k = f"transform.windows.{i}"
            rows.append([f"{w['start']:.1f}–{w['end']:.1f} s", metric(w.get("steps"), f"{k}.steps", 0),
                         metric(w.get("p_before"), f"{k}.p_before"), metric(w.get("p_after"), f"{k}.p_after"),
                         f"{w.get('genre_before', '?')} → {w.get('genre_after', '?')}", metric(w.get("snr_db"), f"{k}.snr_db", 1)])
        parts.append(table("Per window", ["window", "steps", f"p({target}) before", "after", "genre", "SNR dB"], rows))
    if tr.get("notes"):
        parts.append("<h3>Notes of the transformation</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in tr["notes"]) + "</ul>")
    parts.append("</section>")
    settings = ", ".join(f"{k} {v}" for k, v in cfg.items())
    parts.append('<section aria-labelledby="how-h"><h2 id="how-h">How it was made</h2>'
                 + facts([("source", esc(report["source"])), ("output", esc(report["output"])),
                          ("classifier", esc(report.get("classifier") or "?")),
                          ("audio", esc(f"{tr.get('seconds', 0):.1f} s at {tr.get('rate', '?')} Hz, {tr.get('channels', '?')} channel(s)")),
                          ("settings", esc(settings))])
                 + Html('<p>p(target): the classifier\'s probability of the target genre per window, and its mean; '
                        "SNR: 10·log10(Σx² / Σ(x̂ − x)²) of the change against the original. Numbers also in "
                        '<a href="report.json">report.json</a>.</p>') + "</section>")
    parts.append("</main>")
    return page(title, "\n".join(parts), description=f"Before and after of {name} transformed toward {target}")


# ----------------------------------------------------------------------------- the transcription bridge (hook)

#: What a transcription-bridge folder holds, by role: the first existing name of each is used.
BRIDGE_FILES = {
    "recording": ("original.wav", "original.flac", "original.ogg", "original.mp3"),
    "transcription": ("transcription.mid",),
    "transferred": ("transferred.mid",),
}


def bridge_files(folder: str | os.PathLike) -> dict[str, Path] | None:
    """The files of a transcription-bridge folder by role, or None when ``folder`` is not one
    (it needs a recording and a transcription; ``transferred.mid`` and ``bridge.json`` are optional)."""
    d = Path(folder)
    if not d.is_dir():
        return None
    found = {}
    for role, names in BRIDGE_FILES.items():
        hit = next((d / n for n in names if (d / n).is_file()), None)
        if hit is not None:
            found[role] = hit
    return found if {"recording", "transcription"} <= found.keys() else None


def build_bridge_report(folder: str | os.PathLike, out: str | os.PathLike, *, render,
                        max_seconds: float = DEFAULT_MAX_SECONDS, progress=None) -> dict:
    """The listening page of a transcription-bridge folder (:data:`BRIDGE_FILES`): the recording,
    its transcription and the transferred transcription rendered with ``render`` (see
    :func:`audiogenre.render.midi_renderer`), piano rolls of both MIDI files, and the numbers of
    ``bridge.json`` when the folder has one (shown as they are)."""
    import pretty_midi

    from audiogenre.audio import load_audio
    from midigenre.pianoroll import RollSettings, Unusable, read_song
    from shared.atomic import atomic_folder
    from shared.listening import REPORT_JSON, finish_report, write_ogg
    from shared.plotting import plot_rolls
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    started = time.perf_counter()
    files = bridge_files(folder)
    if files is None:
        names = ", ".join(n for v in BRIDGE_FILES.values() for n in v)
        raise GenreError(f"{folder} is not a transcription-bridge folder (it needs a recording and a transcription: {names})")
    extra = {}
    side = Path(folder) / "bridge.json"
    if side.is_file():
        try:
            extra = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise GenreError(f"cannot read {side} ({str(err).splitlines()[0]})") from None
    rec = load_audio(files["recording"], duration=max_seconds)
    settings = RollSettings(meter="assume-4/4")
    with atomic_folder(out, marker=REPORT_JSON, keep_others=True) as tmp:
        (tmp / "audio").mkdir()
        (tmp / "img").mkdir()
        audio = {"recording": {"file": "audio/recording.ogg", "rate": rec.rate,
                               "seconds": round(write_ogg(tmp / "audio/recording.ogg", rec.samples, rec.rate), 4)}}
        panels = []
        for role in ("transcription", "transferred"):
            if role not in files:
                continue
            report_progress("rendering", len(audio) - 1, 2, role)
            try:
                pm = pretty_midi.PrettyMIDI(str(files[role]))
                song = read_song(files[role], settings)
            except (Unusable, OSError, ValueError, EOFError, KeyError, IndexError) as err:
                raise GenreError(f"cannot read {files[role]} as MIDI ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
            seconds = min(max_seconds, pm.get_end_time() + 1.0) if pm.get_end_time() > 0 else 1.0
            samples, rate = render(pm, seconds)
            rel = f"audio/{role}.ogg"
            audio[role] = {"file": rel, "rate": int(rate), "seconds": round(write_ogg(tmp / rel, samples, rate), 4)}
            steps = int(max_seconds * song.tempo / 60 * settings.steps_per_beat)
            panels.append((role, song.roll[:steps]))
        plot_rolls(panels, tmp / "img" / "rolls.png", lowest_pitch=settings.lowest_pitch,
                   steps_per_bar=settings.steps_per_bar, phrase_steps=settings.phrase_steps, dpi=72)
        report = {"format": 1, "kind": "bridge-report", "folder": str(Path(folder).resolve()),
                  "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "package_version": _version(), "files": {k: v.name for k, v in files.items()}, "audio": audio,
                  "pictures": {"rolls": "img/rolls.png"}, "bridge": extra}
        report = finish_report(tmp, report, started, bridge_page)
    return report


def bridge_page(report: dict, folder: Path) -> str:
    from shared.listening import esc, metric, page, picture, player, table

    title = f"Listening report: {Path(report['folder']).name} (transcription bridge)"
    labels = {"recording": "The recording", "transcription": "Its transcription (rendered)",
              "transferred": "The transferred transcription (rendered)"}
    au = report["audio"]
    players = "".join(player(au[k]["file"], labels[k], au[k]["seconds"], k) for k in labels if k in au)
    parts = ["<header>", f"<h1>{esc(title)}</h1>", '<p class="muted">Recording → transcription (MIDI) → genre transfer, '
             "each rendered with FluidSynth.</p></header>", '<main id="main">',
             f'<section aria-labelledby="listen-h"><h2 id="listen-h">Listen</h2><div class="players">{players}</div></section>']
    numbers = [(k, v) for k, v in (report.get("bridge") or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers:
        parts.append(table("Numbers of bridge.json", ["measure", "value"], [[k, metric(v, f"bridge.{k}")] for k, v in numbers]))
    roles = [k for k in ("transcription", "transferred") if k in au]
    parts.append(picture(folder, report["pictures"]["rolls"],
                         f"Piano rolls of the {' and the '.join(roles)}, time from left to right, pitch from bottom to top, "
                         "bar lines in grey."))
    parts.append("</main>")
    return page(title, "\n".join(parts))


__all__ = ["BRIDGE_FILES", "RECORD_SUFFIX", "bridge_files", "build_bridge_report", "build_transform_report",
           "energy_band", "is_transform_output", "plot_spectrograms", "plot_windows", "read_transform_record",
           "snr_db", "spectrogram", "transform_page", "transform_record_path", "write_transform_record"]
