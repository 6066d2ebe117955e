"""The shared training loop on tiny tasks: exact resume, Ctrl-C checkpoints, early stopping,
the CSV log and the learning-rate schedules."""

import csv
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.errors import GenreError
from shared.training import (CSVLog, EarlyStopping, EveryStep, LearningRate, TrainingLoop, linear_decay, permutation,
                             weighted)


class Tiny:
    """A linear model with dropout on fixed data; steps also draw from NumPy's and Python's
    global generators, so a resume that forgot one of them would end elsewhere."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(123)
        self.x, self.y = torch.randn(40, 5, generator=g), torch.randn(40, 1, generator=g)
        self.net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(5, 1))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-2)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.5)
        self.seed = seed

    def state(self):
        return {"net": self.net, "opt": self.opt, "sched": self.sched}

    def batches(self, epoch):
        order = permutation(len(self.x), self.seed, epoch)
        return [order[i:i + 8] for i in range(0, len(order), 8)]

    def train_step(self, idx):
        self.net.train()
        noise = float(np.random.rand()) * 1e-3 + random.random() * 1e-3
        loss = torch.nn.functional.mse_loss(self.net(self.x[idx]) + noise, self.y[idx])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "n": len(idx)}

    def validate(self):
        self.net.eval()
        with torch.no_grad():
            return {"valid_loss": torch.nn.functional.mse_loss(self.net(self.x), self.y).item()}


def loop_for(task, tmp_path, epochs=5, extra=()):
    return TrainingLoop(task, epochs, [LearningRate(scheduler=task.sched),
                                       EarlyStopping(task.net, patience=None), CSVLog(tmp_path / "log.csv"), *extra],
                        checkpoint=tmp_path / "ckpt.pt", meta={"what": "tiny"})


def weights(module):
    return [v.clone() for v in module.state_dict().values()]


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    np.random.seed(1)
    random.seed(1)
    straight = Tiny()
    rows = loop_for(straight, tmp_path / "a").run()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]

    np.random.seed(1)
    random.seed(1)
    calls = []

    def stop(epoch, step, n_steps, values):
        calls.append((epoch, step))
        if len(calls) == 12:  # step 2 of the third epoch (5 steps per epoch)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop_for(Tiny(), tmp_path / "b", extra=[EveryStep(stop)]).run()
    np.random.seed(99)  # whatever happens in between must not matter
    random.seed(99)
    torch.manual_seed(99)
    resumed = Tiny(seed=0)
    loop = loop_for(resumed, tmp_path / "b")
    pos = loop.resume(check=lambda meta: meta == {"what": "tiny"} or pytest.fail("meta"))
    assert (pos.epoch, pos.step) == (2, 2) and len(pos.history) == 2
    rows2 = loop.run()
    for a, b in zip(weights(straight.net), weights(resumed.net)):
        assert torch.equal(a, b)
    assert [r["loss"] for r in rows2] == [r["loss"] for r in rows]  # partial sums were kept
    assert [r["lr"] for r in rows2] == [1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3]  # the scheduler resumed too
    with open(tmp_path / "b" / "log.csv") as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3, 4, 5]


def test_ctrl_c_and_sigterm_stop_between_steps_with_a_checkpoint(tmp_path):
    for sig in (signal.SIGINT, signal.SIGTERM):
        folder = tmp_path / sig.name
        seen = []

        def kill(epoch, step, n_steps, values):
            seen.append(step)
            if epoch == 1 and step == 3:
                os.kill(os.getpid(), sig)  # arrives during the loop: handled after this step

        task = Tiny()
        with pytest.raises(KeyboardInterrupt):
            loop_for(task, folder, extra=[EveryStep(kill)]).run()
        assert seen[-1] == 3
        state = torch.load(folder / "ckpt.pt", weights_only=False)
        assert (state["position"]["epoch"], state["position"]["step"]) == (1, 3)
        for a, b in zip(weights(task.net), state["state"]["net"].values()):
            assert torch.equal(a, b)  # the checkpoint holds the weights after step 3, not half a step
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temporary files left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers are put back


def test_a_damaged_or_foreign_checkpoint_is_one_line(tmp_path):
    loop = loop_for(Tiny(), tmp_path)
    with pytest.raises(GenreError, match="nothing to resume"):
        loop.resume()
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GenreError, match="damaged"):
        loop.resume()
    torch.save({"format": 1, "model": {}}, tmp_path / "ckpt.pt")
    with pytest.raises(GenreError, match="another version"):
        loop.resume()


class Scripted:
    """validate() reports a fixed sequence; the weight is set to the epoch number."""

    def __init__(self, valid):
        self.valid, self.epoch = valid, 0
        self.net = torch.nn.Linear(1, 1)

    def state(self):
        return {"net": self.net}

    def batches(self, epoch):
        self.epoch = epoch
        return [0]

    def train_step(self, batch):
        with torch.no_grad():
            self.net.weight.fill_(self.epoch + 1)
        return {"train_loss": 1.0}

    def validate(self):
        return {"valid_loss": self.valid[self.epoch]}


def test_early_stopping_restores_the_best_epoch(tmp_path):
    task = Scripted([3.0, 1.0, 2.0, 1.5, 0.5, 0.1])
    stop = EarlyStopping(task.net, "valid_loss", patience=2)
    rows = TrainingLoop(task, 6, [stop], checkpoint=tmp_path / "c.pt").run()
    assert len(rows) == 4 and stop.best_epoch == 2  # epochs 3 and 4 were no better: stop
    assert task.net.weight.item() == 2.0  # the weights of epoch 2
    # a resumed early-stopped run stays stopped, and still ends with the best weights
    again = Scripted([3.0, 1.0, 2.0, 1.5, 0.5, 0.1])
    stop2 = EarlyStopping(again.net, "valid_loss", patience=2)
    loop = TrainingLoop(again, 6, [stop2], checkpoint=tmp_path / "c.pt")
    assert loop.resume().stopped
    assert len(loop.run()) == 4 and again.net.weight.item() == 2.0
    # without patience it never stops, and still restores the best
    task = Scripted([3.0, 1.0, 2.0, 1.5, 2.5, 1.2])
    rows = TrainingLoop(task, 6, [EarlyStopping(task.net, "valid_loss", patience=None)]).run()
    assert len(rows) == 6 and task.net.weight.item() == 2.0


def test_csv_log_drops_rows_that_a_resume_redoes(tmp_path):
    log = CSVLog(tmp_path / "log.csv")
    for epoch in (1, 2, 3, 2):  # epoch 3 was logged, then the run resumed from the end of epoch 1
        log.on_epoch_end(None, {"epoch": epoch, "loss": 0.5})
    with open(tmp_path / "log.csv") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1", "2"]


def test_learning_rate_schedules():
    lr_at = linear_decay(2e-4, epochs=30, hold=10)  # the CycleGAN's: constant for 10 epochs, then linear to 0
    assert [lr_at(e) for e in (0, 9, 10)] == [2e-4, 2e-4, 2e-4]
    assert lr_at(20) == pytest.approx(1e-4) and lr_at(29) == pytest.approx(1e-5) and lr_at(30) == 0.0
    assert all(lr_at(e) >= lr_at(e + 1) for e in range(40))
    assert linear_decay(1.0, epochs=5, hold=5)(4) == 1.0


def test_helpers():
    assert weighted({"a": torch.tensor(2.0), "b": torch.tensor(3.0), "c": torch.tensor(5.0)}, {"a": 10.0, "b": 0.0}).item() == 25.0
    p = permutation(10, 3, 2)
    assert sorted(p.tolist()) == list(range(10)) and np.array_equal(p, permutation(10, 3, 2))
    rng = np.random.default_rng(3)
    assert np.array_equal(p, [rng.permutation(10) for _ in range(3)][-1])  # the third draw of one generator
    t = permutation(10, 3, 1, generator="torch")
    gen = torch.Generator().manual_seed(3)
    torch.randperm(10, generator=gen)
    assert torch.equal(t, torch.randperm(10, generator=gen))


def test_a_run_removes_what_a_killed_run_left_half_written(tmp_path):
    """kill -9 during an atomic write leaves ``.NAME.XXXXXXXX.tmpSUFFIX`` files: the next run of
    the folder removes them (in the run folder and its subfolders), and nothing else."""
    import os
    import tempfile

    (tmp_path / "samples").mkdir()
    litter = []
    for folder, name, suffix in ((tmp_path, "checkpoint.pt", ".tmp.pt"), (tmp_path / "samples", "epoch_003.png", ".tmp.png"),
                                 (tmp_path, "log.csv", ".tmp.csv")):
        fd, path = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=suffix)
        os.close(fd)
        litter.append(Path(path))
    keep = [tmp_path / "notes.tmp", tmp_path / ".hidden", tmp_path / "samples" / "epoch_001.png"]
    for p in keep:
        p.write_text("mine")
    fresh = loop_for(Tiny(), tmp_path / "fresh", epochs=1)
    (tmp_path / "fresh").mkdir()
    fresh.run()  # a new run cleans nothing (the folder may be shared): only a resume does
    assert all(p.exists() for p in litter)
    first = loop_for(Tiny(), tmp_path, epochs=1)
    for p in litter:  # the killed run's temporaries appear while it writes; its checkpoint survives
        p.unlink()
    first.run()
    for p in litter:
        p.write_text("half-written")
    again = loop_for(Tiny(), tmp_path, epochs=2)
    again.resume()
    again.run()
    assert not any(p.exists() for p in litter)
    assert all(p.read_text() == "mine" for p in keep)
