"""``genre midi train --recipe NAME``: a model made by its recipe, in one command (midigenre.recipe)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from cli.common import TqdmProgress
from shared.errors import GenreError
from shared.runtime import sigterm_as_interrupt


def genre_paths(specs) -> dict[str, list[str]]:
    """``--genre NAME=PATH`` options as {NAME: [PATH, …]} (a genre may take several folders)."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq or not name or not path:
            raise GenreError(f"--genre {spec}: with --recipe give NAME=FOLDER (a folder of MIDI files; repeat it for "
                             "more folders of one genre) or NAME=FILE.h5 (a prepared cache)")
        out.setdefault(name, []).append(path)
    return out


def train_recipe(recipe_name, genre_specs, split, out, device, precision, threads) -> None:
    """Run a recipe with progress on stderr; Ctrl-C or SIGTERM leaves every finished step, and the
    same command continues."""
    from midigenre.recipe import load_recipe, run_recipe
    from shared.runtime import pick_device, set_threads

    set_threads(threads)
    recipe = load_recipe(recipe_name)
    genres = genre_paths(genre_specs)
    command = " ".join(["genre midi train --recipe", shlex.quote(str(recipe_name)),
                        *[f"--genre {shlex.quote(spec)}" for spec in genre_specs],
                        *([f"--split {shlex.quote(str(split))}"] if split else []), f"--out {shlex.quote(str(out))}",
                        *([f"--precision {precision}"] if precision else [])])
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    sigterm_as_interrupt()
    with TqdmProgress(unit="step", leave=False) as progress:
        def on_epoch(epoch, row):
            progress.close()
            click.echo(f"  epoch {epoch}: {row['seconds']:.0f} s, {row['phrases_per_s']:.1f} phrases/s", err=True)

        try:
            model = run_recipe(recipe, genres, out, split=split, device=str(pick_device(device)), precision=precision,
                               say=lambda line: (progress.close(), say(line)), progress=progress, on_epoch=on_epoch,
                               command=command)
        except KeyboardInterrupt:
            progress.close()
            click.echo(f"Interrupted: every finished step is kept in {out}; run the same command again to continue",
                       err=True)
            sys.exit(130)
    card = (Path(model) / "README.md").read_text(encoding="utf-8")
    head = next((line for line in card.splitlines() if line.startswith("**Every target met")), "")
    click.echo(f"model: {model} (use it with --model {model}); card: {Path(model) / 'README.md'}")
    if head:
        click.echo(f"held out: {head.strip('*').replace('**', '')}")
