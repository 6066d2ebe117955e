"""``genre model``: what a model is, what it was trained on and which songs it never saw; and
``--upgrade``, which rewrites folders of the old model format (:mod:`shared.upgrade`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

PARTS = {"train": "training", "valid": "validation", "test": "held-out"}


def _lead(card: Path) -> str:
    """The model card's first paragraph (its one-line description), without markdown emphasis."""
    if not card.is_file():
        return ""
    for para in card.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        p = para.strip()
        if p and not p.startswith("#"):
            return " ".join(p.replace("**", "").split())
    return ""


def _genres(meta: dict) -> list[str]:
    g = meta.get("genres")
    names = [g[k] for k in ("a", "b") if k in g] if isinstance(g, dict) else list(g or [])
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"genres must be names, not {g!r}")
    return names


@click.command("model")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--songs", type=click.Choice(list(PARTS)), help="List the songs of one part of the model's split "
              "(test: the held-out songs, never seen in training or in choosing the model).")
@click.option("--upgrade", is_flag=True, help="Rewrite model folders of the old format 1 (genre-transfer 0.1.0) "
              "in the current format, the weights bit-identical; several folders may be given.")
@click.option("--encoder", type=click.Path(), help="With --upgrade: where the wav2vec2 weights of an audio "
              "classifier are now (to check that the upgraded folder loads).")
@click.option("--dry-run", is_flag=True, help="With --upgrade: print the new model.json, write nothing.")
def model(names, songs, upgrade, encoder, dry_run):
    """Know a model: its kind, genres, settings, card and the songs it was trained, chosen and
    measured on.

    Without NAME, the shipped models, one line each.

    \b
    Examples:
      genre model
      genre model four-genres-melody
      genre model four-genres-melody --songs test     # songs to try it on that it never saw
      genre model runs/jc
      genre model old-runs/jc old-runs/clf --upgrade  # folders saved by genre-transfer 0.1.0
    """
    from shared.errors import GenreError
    from shared.registry import model_folder, read_meta, shipped_model, shipped_model_names

    if upgrade:
        if songs:
            raise GenreError("--songs and --upgrade do not go together")
        if not names:
            raise GenreError("--upgrade needs model folders: genre model FOLDER… --upgrade")
        if not _upgrade(names, encoder, dry_run):
            click.get_current_context().exit(1)
        return
    if encoder or dry_run:
        raise GenreError(f"{'--encoder' if encoder else '--dry-run'} goes with --upgrade: genre model FOLDER --upgrade")
    if len(names) > 1:
        raise GenreError(f"one model at a time ({len(names)} given); several folders only with --upgrade")
    name = names[0] if names else None
    if name is None:
        if songs:
            raise GenreError("--songs needs a model: genre model NAME --songs test")
        for n in shipped_model_names():
            meta = json.loads((shipped_model(n) / "model.json").read_text())
            lead = _lead(shipped_model(n) / "README.md")
            genres = ", ".join(_genres(meta))
            click.echo(f"{n:<24}{meta.get('kind', '?'):<18}{genres:<34}"
                       + ("melody-locked" if _locked(meta) else ""))
            if lead:
                click.echo(f"{'':<24}{lead[:110] + ('…' if len(lead) > 110 else '')}")
        click.echo("genre model NAME for one model; genre model NAME --songs test for the songs it never saw")
        return
    folder = model_folder(name)
    meta = read_meta(folder)  # one-line errors: no model.json, not JSON, not an object, a format it cannot read
    split_path = folder / "split.json"
    split = None
    if split_path.is_file():
        try:
            split = json.loads(split_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise GenreError(f"{split_path} cannot be read ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
                             ) from None
        if not isinstance(split, dict) or not isinstance(split.get("genres", {}), dict):
            raise GenreError(f"{split_path} is not a split (a JSON object with genres was expected)")
    try:
        _show(name, folder, meta, split, songs)
    except (AttributeError, KeyError, TypeError, ValueError) as err:  # a field of the wrong type
        raise GenreError(f"{folder / 'model.json'} or its split.json is damaged: {type(err).__name__}: {err}") from None


def _upgrade(names, encoder, dry_run) -> bool:
    """``--upgrade``: each folder upgraded (or its one-line error); False when any failed."""
    from shared.errors import GenreError
    from shared.registry import model_folder
    from shared.upgrade import upgrade_folder

    ok = True
    for name in names:
        try:
            done = upgrade_folder(model_folder(name), encoder=encoder, dry_run=dry_run)
        except GenreError as err:
            click.echo(f"Error: {err}", err=True)
            ok = False
            continue
        if done.meta is not None:
            click.echo(json.dumps(done.meta, indent=2))
        click.echo(done.line)
    return ok


def _show(name, folder: Path, meta: dict, split: dict | None, songs: str | None) -> None:
    from shared.errors import GenreError

    if songs:
        if split is None:
            raise GenreError(f"{folder} has no split.json: which songs it saw is not recorded")
        for g in _genres(meta) or list(split.get("genres", {})):
            for entry in split.get("genres", {}).get(g, {}).get(songs, []):
                click.echo(f"{g}\t{entry['name']}")
        return
    click.echo(f"{name}: {meta.get('kind', '?')} model in {folder}")
    lead = _lead(folder / "README.md")
    if lead:
        click.echo(f"  {lead}")
    click.echo(f"  genres: {', '.join(_genres(meta))}")
    s = meta.get("settings") or {}
    if s:
        click.echo(f"  piano roll: {s.get('steps_per_bar', 16)} steps a bar, {s.get('bars_per_phrase', 4)} bars a phrase, "
                   f"MIDI {s.get('lowest_pitch', 24)}–{s.get('lowest_pitch', 24) + s.get('n_pitches', 84) - 1}, meter {s.get('meter', '?')}"
                   + "".join(f"; {g}: meter {v.get('meter')}" for g, v in (meta.get("genre_settings") or {}).items()
                             if isinstance(v, dict) and v.get("meter") and v.get("meter") != s.get("meter")))
    click.echo(f"  melody-locked: {'yes (keeps the melody note for note)' if _locked(meta) else 'no'}")
    if meta.get("thresholds"):
        click.echo(f"  thresholds: {json.dumps(meta['thresholds'])}")
    if any((meta.get("keep_source") or {}).values()):
        click.echo(f"  keeps the source's notes: {', '.join(k for k, v in meta['keep_source'].items() if v)}")
    click.echo(f"  trained: {meta.get('epochs_done', '?')} epochs, saved {meta.get('created', '?')} by "
               f"genre-transfer {meta.get('package_version', '?')}")
    if split is not None:
        counts = {p: {g: len(v.get(p, [])) for g, v in split.get("genres", {}).items()} for p in PARTS}
        for p, label in PARTS.items():
            click.echo(f"  {label} songs: " + ", ".join(f"{g} {n}" for g, n in counts[p].items()))
        click.echo(f"  (genre model {name} --songs test lists the held-out ones)")
    card = folder / "README.md"
    text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else ""
    made = next((line.split("`")[1] for line in text.splitlines() if line.startswith("- Command: `")), None)
    if (folder / "recipe.toml").is_file() and made:
        click.echo(f"  made by: {made}")
    head = next((line for line in text.splitlines() if line.startswith("**Every target met")), None)
    if head:
        click.echo(f"  held out: {head.replace('**', '')}")
    if card.is_file():
        click.echo(f"  card: {card}")


def _locked(meta: dict) -> bool:
    configs = [meta.get("config") or {}] + [g.get("config") or g.get("train") or {}
                                            for g in (meta.get("per_target_generators") or [])
                                            + list((meta.get("generators") or {}).values())]
    return any(bool(c.get("melody_lock")) for c in configs)
