"""Training on two processes (gloo on the CPU, DistributedDataParallel): the same weights as one
process with the same global batch, only rank 0 writes, and an interrupted run resumes on any
number of processes. The processes are real (``shared.distributed.launch``: spawn, the
environment torchrun sets); the models tiny."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.distributed import Context, launch
from tests.conftest import REPO, TINY_MODEL

CFG = dict(preset="tiny", epochs=1, decay_after=1, batch_size=2, lr=1e-5, sigma_d=0.0, pool_size=0, seed=3,
           identity=0.5, genre_loss=0.5, spectral_norm=True)


def _writes(root: Path, record: list):
    """An audit hook (sys.addaudithook) that records every file this process creates, replaces,
    removes or opens for writing under ``root``: the atomic writes (mkstemp + os.replace), h5py
    aside, all go through these events."""
    root = str(root)

    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode, flags = str(os.fsdecode(args[0])), args[1], args[2]
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing and path.startswith(root):
                record.append(("open", path))
        elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree") and args:
            target = args[1] if event == "os.rename" else args[0]  # os.replace is audited as os.rename(src, dst)
            path = str(os.fsdecode(target)) if isinstance(target, (str, bytes, os.PathLike)) else ""
            if path.startswith(root):
                record.append((event, path))

    return hook


def _worker(jobs: list, audit_dir: str) -> None:
    """One process of the two: run each job (a CycleGAN or a classifier training), recording this
    process's writes under the job's folder, and save the record next to (not in) the folders."""
    from midigenre import models
    from midigenre.classifier import train_classifier
    from midigenre.config import ClassifierConfig
    from midigenre.train import CycleGANTask, GenreSource, TrainConfig
    from shared import distributed

    models.PRESETS["tiny"] = models.ModelConfig(**TINY_MODEL)
    CycleGANTask.save_samples = lambda self, path, epoch: path.write_bytes(b"")  # as tests/test_cyclegan.py's stub_samples
    rank = distributed.env_rank()
    record: list = []
    root = Path(audit_dir).parent / "runs"
    sys.addaudithook(_writes(root, record))
    try:
        for kind, kw in jobs:
            if kind == "cyclegan":
                task = CycleGANTask(GenreSource.parse(kw["a"]), GenreSource.parse(kw["b"]), kw["out"],
                                    TrainConfig.from_dict(kw["cfg"]), device="cpu")
                stop = kw.get("stop_at")

                def progress(stage, step, n, note, _seen=[0], stop=stop):
                    _seen[0] += 1
                    if _seen[0] == stop:  # a kill on rank 0 alone, inside an epoch
                        os.kill(os.getpid(), signal.SIGTERM)

                task.fit(progress=progress if stop else None)
            elif kind == "head":
                head, history = _head(kw["cfg"])
                if rank == 0:
                    torch.save({"state": head.state_dict(), "history": history}, kw["out"])
            else:
                train_classifier([GenreSource.parse(s) for s in kw["sources"]], kw["out"],
                                 ClassifierConfig(**kw["cfg"]), device="cpu")
    finally:
        (Path(audit_dir) / f"rank{rank}.json").write_text(json.dumps(record))
        distributed.finish()


def _head(cfg: dict):
    """The wav2vec2 genre head on made-up embeddings (3 genres, validation, early stopping, StepLR)."""
    from audiogenre.embeddings import HeadConfig, train_head
    from audiogenre.models import GenreHead

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = rng.normal(size=(60, 16)).astype(np.float32) + y[:, None]
    torch.manual_seed(0)
    head = GenreHead(16, 3, hidden=8, dropout=0.0)
    history, _ = train_head(head, x[:44], y[:44], x[44:], y[44:], HeadConfig(**cfg), device="cpu")
    return head, history


def _plain_cyclegan(a, b, out, cfg):
    from midigenre.train import CycleGANTask, GenreSource, TrainConfig

    task = CycleGANTask(GenreSource.parse(a), GenreSource.parse(b), out, TrainConfig.from_dict(cfg), device="cpu")
    task.fit()
    return task


def _same_training(state_a: dict, state_b: dict, lr: float, forward) -> None:
    """Two trainings took the same steps, up to the order of floating-point sums.

    Adam turns any gradient into a step of about ``lr``, so round-off noise in a gradient that
    should be 0 (a bias before instance norm) moves a weight by ``lr`` whatever its sign: the
    weights are compared in the number of elements that differ by more than ``lr`` (one process
    against two: ~0.1 % of the CycleGAN, a few % of the tiny classifier's (its biases before
    instance norm); two processes that skip the gradient all-reduce: ~50 %), and the networks
    by their outputs (``forward(state) -> tensor``: 4e-4 against 8e-3 without the all-reduce)."""
    assert state_a.keys() == state_b.keys()
    diff = torch.cat([(state_a[k].float() - state_b[k].float()).abs().flatten() for k in state_a])
    moved = float((diff > lr).float().mean())
    out = float((forward(state_a) - forward(state_b)).abs().max())
    print(f"weights apart by more than lr: {moved:.2%}; outputs apart by at most {out:.2e}")
    assert moved < 0.05 and out < 2e-3, (moved, out)


def test_shard_is_the_distributed_sampler_striding():
    batch = (4, 7, np.arange(10, 15), np.arange(20, 25))
    parts = [Context(rank=r, world=2, backend="gloo") for r in range(2)]
    out = [c.shard(batch) for c in parts]
    assert out[0][:2] == (4, 7) and list(out[0][2]) == [10, 12, 14] and list(out[1][3]) == [21, 23]
    assert parts[0].share() == pytest.approx(3 * 2 / 5) and parts[1].share() == pytest.approx(2 * 2 / 5)
    assert sorted([*out[0][2], *out[1][2]]) == list(range(10, 15))  # every example once
    assert parts[1].shard(np.arange(1)) is None  # a last batch of one example: no process trains on it


def test_two_processes_match_one_only_rank_0_writes_and_a_killed_run_resumes(small_caches, tmp_path, tiny_preset,
                                                                              caches, monkeypatch):
    from midigenre.train import CycleGANTask

    monkeypatch.setattr(CycleGANTask, "save_samples", lambda self, path, epoch: path.write_bytes(b""))
    a, b = (str(p) for p in small_caches)
    runs, audit = tmp_path / "runs", tmp_path / "audit"
    runs.mkdir()
    audit.mkdir()
    clf_cfg = dict(epochs=1, batch_size=11, channels=(4, 4, 4, 4), seed=1, lr=1e-5)
    clf_sources = [f"{caches[0]}", f"{caches[1]}"]
    head_cfg = dict(epochs=3, batch_size=5, lr=1e-5, step_size=1, hidden=8, dropout=0.0, patience=1)
    jobs = [("classifier", dict(sources=clf_sources, out=str(runs / "clf"), cfg=clf_cfg)),
            ("head", dict(out=str(runs / "head.pt"), cfg=head_cfg)),
            ("cyclegan", dict(a=a, b=b, out=str(runs / "killed"), cfg=CFG, stop_at=2))]
    with pytest.raises(KeyboardInterrupt):  # the last job is stopped by a SIGTERM to rank 0 in epoch 1
        launch(_worker, 2, jobs, str(audit))

    # one process, the same global batch, not stopped
    plain = _plain_cyclegan(a, b, tmp_path / "plain", CFG)
    def generators(state):
        from midigenre.cyclegan import CycleGAN

        m = CycleGAN(plain.cfg.model, genre_critic=True)
        m.load_state_dict(state)
        x = torch.cat(plain.samples)
        with torch.no_grad():
            return torch.cat([m.eval().G_AB(x), m.G_BA(x), m.C(x)[:, None, None, None].expand(-1, 1, 1, 84)], dim=2)

    assert plain.model.C is not None  # the genre critic trains on both processes as well

    from midigenre.classifier import Classifier, train_classifier
    from midigenre.config import ClassifierConfig
    from midigenre.train import GenreSource

    train_classifier([GenreSource.parse(s) for s in clf_sources], tmp_path / "clf1", ClassifierConfig(**clf_cfg), device="cpu")
    one, two = Classifier.load(tmp_path / "clf1"), Classifier.load(runs / "clf")
    x = torch.from_numpy(np.random.default_rng(0).random((16, 1, 64, 84)) > 0.9).float()

    def logits(state):
        one.net.load_state_dict(state)
        with torch.no_grad():
            return one.net(x)

    _same_training(one.net.state_dict(), two.net.state_dict(), clf_cfg["lr"], logits)

    # the head: 44 embeddings in batches of 5 (3 + 2 on the processes: weighted by share), validation on rank 0 sent to both
    head, history = _head(head_cfg)
    two_head = torch.load(runs / "head.pt", weights_only=False)
    assert [r["epoch"] for r in two_head["history"]] == [r["epoch"] for r in history]
    assert two_head["history"][-1]["valid_loss"] == pytest.approx(history[-1]["valid_loss"], abs=1e-5)
    x = torch.randn(8, 16)

    def head_out(state):
        head.load_state_dict(state)
        with torch.no_grad():
            return head(x)

    _same_training(head.state_dict(), two_head["state"], head_cfg["lr"], head_out)

    # only rank 0 wrote (its record is the check that the hook sees the writes)
    rank0, rank1 = (json.loads((audit / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank1 == []
    written = {Path(p).name for _, p in rank0}
    assert {"checkpoint.pt", "model.safetensors", "report.json"} <= written

    # the CycleGAN: SIGTERM to rank 0 alone stopped both processes after step 2 of the epoch's 3;
    # one process finishes it, and ends where the run of one process that was never stopped ends
    killed = torch.load(runs / "killed" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert (killed["position"]["epoch"], killed["position"]["step"]) == (0, 2) and len(killed["ranks"]) == 2
    from midigenre.train import CycleGANTask, TrainConfig

    resumed = CycleGANTask(GenreSource.parse(a), GenreSource.parse(b), runs / "killed", TrainConfig.from_dict(CFG),
                           split=runs / "killed" / "split.json", device="cpu")
    resumed.resume()
    resumed.fit()
    _same_training(plain.model.state_dict(), resumed.model.state_dict(), CFG["lr"], generators)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_nproc_trains_and_answers_a_bad_setting_in_one_line(small_caches, tmp_path):
    """--nproc 2 from the command line (a resume on another number of processes: the test above)."""
    a, b = (str(p) for p in small_caches)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    base = [sys.executable, "-m", "cli", "midi", "train", "--a", a, "--b", b, "--preset", "small", "--sample-phrases", "1",
            "--device", "cpu", "--epochs", "1", "--nproc", "2", "--nproc-anyway"]  # on a machine of 1 core too
    done = subprocess.run(base + ["--out", str(run), "--batch-size", "2"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 processes" in done.stderr and done.stdout.count("done: model in") == 1  # rank 0 alone speaks
    assert (run / "model.safetensors").exists() and len((run / "log.csv").read_text().splitlines()) == 2
    bad = subprocess.run(base + ["--out", str(tmp_path / "bad"), "--batch-size", "1"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.count("Error:") == 1, bad.stderr
    assert "global batch" in bad.stderr and "Traceback" not in bad.stderr
