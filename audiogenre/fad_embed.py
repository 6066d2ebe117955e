"""Embeddings for FAD: one vector per second of audio, from any backend with ``frames()``.

A song is read whole, made mono and resampled to 16 kHz, cut into windows of at most
``window`` seconds (the last one shorter, never zero-padded), and the backend's frames are
pooled per ``segment`` seconds (mean+max, like the classifier). FAD then compares the sets of
per-second vectors of two folders. Runs under ``torch.inference_mode()`` locally: autograd is
never switched off for the process (it would break the gradient transformation).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from audiogenre.audio import SAMPLE_RATE, load_audio, resample, to_mono
from audiogenre.datasets.items import AUDIO_EXTENSIONS as AUDIO_SUFFIXES  # the data sets' list
from shared.errors import GenreError

log = logging.getLogger(__name__)


def embedding_backend(spec: str, layers: int | None = 7):
    """A classifier folder or a shipped classifier's name (its backend), or a wav2vec2 name/folder
    (first ``layers`` layers).

    The backend of a classifier knows the segment length it was trained on
    (``backend.segment_seconds``); a wav2vec2 encoder has None.
    """
    from audiogenre.backends import Wav2Vec2Backend
    from audiogenre.models import AudioClassifier

    from shared.registry import shipped_model

    p = Path(spec).expanduser()
    if not (p / "model.json").exists() and "/" not in spec and "\\" not in spec \
            and (shipped_model(spec) / "model.json").is_file():
        p = shipped_model(spec)  # a shipped model's name (audio-rendered), as --classifier takes it
    if (p / "model.json").exists():
        model, _ = AudioClassifier.load(p)
        return model.backend.eval()
    return Wav2Vec2Backend.from_pretrained(spec, layers=layers)


def wave_embeddings(backend, mono16: np.ndarray, *, segment: float = 1.0, window: float = 10.0, device: str = "cpu") -> np.ndarray:
    """``(n_segments, D)`` per-``segment`` embeddings of a 16 kHz mono signal.

    A backend whose ``frames()`` lie on a fixed time grid (``frame_rate``, wav2vec2) is run on
    windows of at most ``window`` seconds and its frames pooled per segment; any other backend
    (the trainable ones) embeds each segment as a clip of its own.
    """
    import torch

    from audiogenre.backends import pool_frames

    if backend.frame_rate is None:  # embed each segment as a clip of its own
        n = int(round(segment * SAMPLE_RATE))
        chunks = [mono16[s:s + n] for s in range(0, len(mono16) - n + 1, n)]
        if not chunks and len(mono16) >= n // 2:
            chunks = [np.pad(mono16, (0, n - len(mono16)))]
        if not chunks:
            return np.zeros((0, backend.dim), np.float32)
        was = backend.training
        backend.eval()
        with torch.inference_mode():
            out = [backend(torch.from_numpy(np.stack(chunks[i:i + 64])).to(device)).float().cpu().numpy()
                   for i in range(0, len(chunks), 64)]
        backend.train(was)
        return np.concatenate(out).astype(np.float32)
    per = max(1, int(round(segment * backend.frame_rate)))
    w = int(round(window * SAMPLE_RATE))
    out = []
    with torch.inference_mode():
        for s in range(0, len(mono16), w):
            piece = mono16[s:s + w]
            if len(piece) < SAMPLE_RATE * segment / 2:
                break
            frames = backend.frames(torch.from_numpy(np.ascontiguousarray(piece))[None].to(device)).float()
            n = frames.shape[1]
            for f0 in range(0, n, per):
                chunk = frames[:, f0:f0 + per]
                if chunk.shape[1] * 2 < per:
                    break
                out.append(pool_frames(chunk, backend.pooling)[0].cpu().numpy())
    if not out:
        return np.zeros((0, backend.dim), np.float32)
    return np.stack(out).astype(np.float32)


def audio_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise GenreError(f"no such folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise GenreError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}")
    return files


def folder_embeddings(backend, folder: str | os.PathLike, *, segment: float = 1.0, progress=None,
                      device: str = "cpu") -> dict[str, np.ndarray]:
    """Per-file per-segment embeddings of every audio file under ``folder`` (unreadable files skipped).

    ``progress(stage, done, total)`` (:mod:`shared.progress`) counts the files."""
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    files = audio_files(folder)
    root = Path(folder) if Path(folder).is_dir() else Path(folder).parent
    out = {}
    stage = f"embedding {Path(folder).name}"
    for done, f in enumerate(files):
        report_progress(stage, done, len(files))
        try:
            a = load_audio(f)
        except GenreError as err:
            log.warning("skipped: %s", err)
            continue
        mono = np.clip(resample(to_mono(a.samples), a.rate, SAMPLE_RATE), -1, 1)
        e = wave_embeddings(backend, mono, segment=segment, device=device)
        if len(e):
            out[f.relative_to(root).as_posix()] = e
        else:
            log.warning("skipped %s: shorter than half a segment", f)
    report_progress(stage, len(files), len(files))
    if not out:
        raise GenreError(f"no usable audio in {folder}")
    return out
