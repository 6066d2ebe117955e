"""Library functions leave the caller's random generators as they were (shared.runtime.RandomStates)."""

import random

import numpy as np
import pytest
import torch

from shared.runtime import RandomStates, keeps_random_state, seed_everything


def draws() -> tuple:
    """One number from each global generator: Python's, NumPy's and torch's."""
    return random.random(), float(np.random.random()), torch.rand(1).item()


def leaves_the_callers_generators_alone(call) -> None:
    """Run ``call()`` between two draws and check the draws are those of a caller that never called it."""
    seed_everything(123)
    draws()
    expected = draws()
    seed_everything(123)
    draws()
    call()
    assert draws() == expected


def test_random_states_keep_the_job_apart_from_the_caller():
    job = RandomStates(7)
    seed_everything(1)
    caller = [draws(), draws()]
    seed_everything(1)
    with job:
        first = draws()
    assert draws() == caller[0]  # the caller goes on as if the job had not run
    with job:
        second = draws()  # the job goes on where it stopped
    assert draws() == caller[1]
    seed_everything(7)
    assert [draws(), draws()] == [first, second]  # the job's draws are those of seed 7


def test_keeps_random_state_gives_the_state_back_on_an_error_too():
    @keeps_random_state
    def reseeds(fail: bool) -> float:
        seed_everything(0)
        if fail:
            raise ValueError("no")
        return torch.rand(1).item()

    leaves_the_callers_generators_alone(lambda: reseeds(False))
    leaves_the_callers_generators_alone(lambda: pytest.raises(ValueError, reseeds, True))
    assert reseeds(False) == reseeds(False)  # still seeded inside


def test_train_head_leaves_the_callers_random_state_alone():
    from audiogenre.embeddings import HeadConfig, train_head
    from audiogenre.models import GenreHead

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 8)).astype(np.float32), np.arange(24) % 2
    head = GenreHead(8, 2, hidden=4)  # built by the caller, with the caller's draws
    leaves_the_callers_generators_alone(lambda: train_head(head, x, y, None, None, HeadConfig(epochs=2, batch_size=8)))
