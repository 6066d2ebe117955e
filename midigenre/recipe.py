"""Recipes: how a model is made, as a file, and the one command that makes it.

A recipe (``midigenre/recipes/NAME.toml``, or any TOML file of that form) says everything a
shipped model was made with: its genres and the meter rule each is read with, the song split,
the training(s) and their settings, how many of their epochs may be chosen from, the rule the
model is chosen by on the validation songs, and the songs it is measured on. :func:`run_recipe`
does every step into one folder, each step kept so that running it again continues where it
stopped:

1. ``caches/NAME.h5``: each genre's MIDI folders prepared with the recipe's meter rule (or a
   cache given as is);
2. ``split.json``: one song-level split of every genre (or the one given, e.g. a shipped model's);
3. ``runs/TRAINING``: each training, with ``--keep-epochs`` (an interrupted one resumes);
4. ``judges/``: the judges (:func:`midigenre.judges.train_judges`), trained on the split's training songs only: ``reference`` chooses,
   ``cnn-seed1`` (the same network, another seed) and ``feature`` (an MLP over musical
   statistics) give the headline;
5. ``chosen/``: the model chosen from the kept epochs on whole validation songs by the
   reference judge (:func:`midigenre.choose.choose_by_song`);
6. ``held-out.json``: the chosen model measured on the held-out songs
   (:func:`midigenre.song_quality.measure_model`), beside matched baselines;
7. ``model/``: the model folder (weights, ``model.json``, ``split.json``, the recipe) with its card
   (``README.md``), written from the run's own records by :mod:`midigenre.card`.

    >>> from midigenre.recipe import load_recipe, run_recipe
    >>> recipe = load_recipe("four-genres-melody")
    >>> run_recipe(recipe, {"pop": ["midi/pop"], "classical": ["midi/classical"], ...}, "runs/four")
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from shared.errors import GenreError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

#: where the shipped recipes are
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
KINDS = ("multi-genre", "cyclegan")
RULES = ("keep-the-song",)


@dataclass(frozen=True)
class Training:
    """One training of a recipe: its name (its run folder), its settings (the fields of
    :class:`midigenre.config.MultiGenreConfig` or :class:`midigenre.config.TrainConfig`), the
    last epoch that may be chosen (None: every kept epoch) and the arithmetic it ran with
    (``precision``: bf16 autocast changes the numbers, so a recipe says which)."""

    name: str
    settings: dict
    candidates: int | None = None
    precision: str = "auto"


@dataclass(frozen=True)
class Recipe:
    """A model's making (see the module's docstring). ``genres`` are the model's, in order (a
    pair's A then B); ``judge_genres`` the judges' (the model's and maybe more: every genre
    given is prepared)."""

    name: str
    summary: str
    kind: str
    genres: tuple[str, ...]
    meters: dict[str, str]
    trainings: tuple[Training, ...]
    rule: str = "keep-the-song"
    choose_songs: int = 0
    judge_genres: tuple[str, ...] = ()
    judge_epochs: int = 10
    test_fraction: float = 0.1
    valid_fraction: float = 0.1
    seed: int = 0
    measure_songs: int = 0
    limits: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)

    @property
    def all_genres(self) -> list[str]:
        """The model's genres, then the judges' others."""
        return list(dict.fromkeys([*self.genres, *self.judge_genres]))

    def meter(self, genre: str) -> str:
        return self.meters.get(genre, self.meters.get("*", "strict"))

    def command(self, genres: dict[str, Sequence[str]] | None = None, *, split: str | None = None,
                out: str = "runs/NAME") -> str:
        """The one command that runs this recipe (``genres``: what each ``--genre`` names; default DATA/NAME)."""
        specs = []
        for g in self.all_genres:
            for p in (genres or {}).get(g) or [f"DATA/{g}"]:
                specs.append(f"--genre {g}={p}")
        return (f"genre midi train --recipe {self.name} " + " ".join(specs)
                + (f" --split {split}" if split else "") + f" --out {out}")


def recipe_names() -> list[str]:
    """The shipped recipes' names."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


_TOP = {"summary", "kind", "genres", "meter", "split", "training", "choose", "measure", "limits"}


def load_recipe(name_or_path: str | os.PathLike) -> Recipe:
    """A shipped recipe by name, or a recipe file; a malformed one is a one-line error."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = RECIPES_DIR / f"{name_or_path}.toml"
        if not p.is_file():
            raise GenreError(f"no recipe named {name_or_path!r}; the shipped ones: {', '.join(recipe_names())} "
                             "(or give a recipe file, NAME.toml)")
    try:
        d = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenreError(f"no such recipe file: {p}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise GenreError(f"cannot read the recipe {p}: {err}") from None
    what = f"the recipe {p}"
    unknown = sorted(set(d) - _TOP)
    if unknown:
        raise GenreError(f"{what}: unknown entry {unknown[0]!r} (known: {', '.join(sorted(_TOP))})")
    kind = d.get("kind")
    if kind not in KINDS:
        raise GenreError(f"{what}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    genres = d.get("genres")
    if not (isinstance(genres, list) and len(genres) >= 2 and all(isinstance(g, str) and g for g in genres)
            and len(set(genres)) == len(genres)):
        raise GenreError(f"{what}: genres must list two or more different genre names")
    if kind == "cyclegan" and len(genres) != 2:
        raise GenreError(f"{what}: a cyclegan recipe has two genres (A and B), not {len(genres)}")
    meters = d.get("meter", {})
    from midigenre.pianoroll import METER_MODES

    if not isinstance(meters, dict) or any(v not in METER_MODES for v in meters.values()):
        raise GenreError(f"{what}: [meter] maps a genre (or \"*\" for all) to one of {', '.join(METER_MODES)}")
    split, choose, measure = (d.get(k, {}) for k in ("split", "choose", "measure"))
    for section, table, known in (("split", split, {"test_fraction", "valid_fraction", "seed"}),
                                  ("choose", choose, {"rule", "songs", "judge_genres", "judge_epochs"}),
                                  ("measure", measure, {"songs"})):
        if not isinstance(table, dict) or set(table) - known:
            raise GenreError(f"{what}: [{section}] takes {', '.join(sorted(known))}")
    rule = choose.get("rule", "keep-the-song")
    if rule not in RULES:
        raise GenreError(f"{what}: the choice rule must be one of {', '.join(RULES)}, not {rule!r}")
    raw = d.get("training")
    if not (isinstance(raw, list) and raw and all(isinstance(t, dict) for t in raw)):
        raise GenreError(f"{what}: give one or more [[training]] tables")
    trainings = []
    for t in raw:
        t = dict(t)
        name, candidates, precision = t.pop("name", None), t.pop("candidates", None), t.pop("precision", "auto")
        if precision not in ("auto", "fp32", "bf16"):
            raise GenreError(f"{what}: training {name}: precision is auto, fp32 or bf16, not {precision!r}")
        if not (isinstance(name, str) and name.replace("-", "").replace("_", "").isalnum()):
            raise GenreError(f"{what}: every [[training]] needs a plain name (letters, digits, - and _)")
        if candidates is not None and not (isinstance(candidates, int) and candidates >= 1):
            raise GenreError(f"{what}: training {name}: candidates is the last epoch that may be chosen (1 or more)")
        if "keep_epochs" in t or "valid_fraction" in t or "test_fraction" in t:
            raise GenreError(f"{what}: training {name}: keep_epochs and the split are the recipe's own, not a training's")
        _settings(kind, t, valid_fraction=0.1)  # a wrong setting fails now, not after hours of work
        trainings.append(Training(name, t, candidates, precision))
    if len({t.name for t in trainings}) < len(trainings):
        raise GenreError(f"{what}: the trainings' names must differ")
    judge_genres = choose.get("judge_genres", genres)
    if not (isinstance(judge_genres, list) and set(genres) <= set(judge_genres)):
        raise GenreError(f"{what}: [choose] judge_genres must hold the model's genres ({', '.join(genres)})")
    try:
        return Recipe(
            name=p.stem, summary=str(d.get("summary", "")), kind=kind, genres=tuple(genres), meters=dict(meters),
            trainings=tuple(trainings), rule=rule, choose_songs=int(choose.get("songs", 0)),
            judge_genres=tuple(judge_genres), judge_epochs=int(choose.get("judge_epochs", 10)),
            test_fraction=float(split.get("test_fraction", 0.1)), valid_fraction=float(split.get("valid_fraction", 0.1)),
            seed=int(split.get("seed", 0)), measure_songs=int(measure.get("songs", 0)),
            limits=tuple(str(v) for v in d.get("limits", [])), path=p)
    except (TypeError, ValueError) as err:
        raise GenreError(f"{what}: {err}") from None


def _settings(kind: str, settings: dict, *, valid_fraction: float):
    """The training settings a recipe's training runs with (it always keeps its epochs)."""
    from midigenre.config import MultiGenreConfig, TrainConfig
    from shared.config import merge

    cls = MultiGenreConfig if kind == "multi-genre" else TrainConfig
    return merge(cls, given={**settings, "keep_epochs": True, "valid_fraction": valid_fraction}, what="recipe settings")


# ----------------------------------------------------------------------------- running it


def _say(say, line):
    if say is not None:
        say(line)


def _record(out: Path) -> dict:
    p = out / "recipe-run.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {"steps": {}}


def _save_record(out: Path, rec: dict) -> None:
    from shared.atomic import write_json

    write_json(out / "recipe-run.json", rec)


def prepare_caches(recipe: Recipe, genres: dict[str, list[Path]], out: Path, *, say=None, progress=None) -> dict[str, Path]:
    """Per genre, its cache: a given ``.h5`` as is, or its folders prepared into
    ``out/caches/NAME.h5`` with the recipe's meter rule (kept when there from an earlier run)."""
    from midigenre.pianoroll import RollSettings
    from midigenre.prepare import prepare, prepared_earlier

    caches = {}
    for g in recipe.all_genres:
        paths = [Path(p) for p in genres[g]]
        if len(paths) == 1 and paths[0].suffix == ".h5":
            if not paths[0].is_file():
                raise GenreError(f"--genre {g}={paths[0]}: no such cache")
            caches[g] = paths[0]
            continue
        for p in paths:
            if not p.is_dir():
                raise GenreError(f"--genre {g}={p}: give a folder of MIDI files (or one prepared cache, FILE.h5)")
        cache = out / "caches" / f"{g}.h5"
        settings = RollSettings(meter=recipe.meter(g))
        if prepared_earlier(cache, g, settings):
            _say(say, f"{g}: {cache}, prepared by an earlier run")
        else:
            cache.parent.mkdir(parents=True, exist_ok=True)
            _say(say, f"preparing {g} from {', '.join(map(str, paths))} (meter rule {settings.meter}) into {cache} …")
            state = [0, 0]

            def on_start(n, state=state):
                state[1] = n

            def each(res, g=g, state=state):
                state[0] += 1
                progress(f"prepare {g}", state[0], state[1])

            report = prepare([str(p) for p in paths], g, cache, settings, workers=os.cpu_count() or 1, resume=True,
                             progress=each if progress else None, on_start=on_start)
            _say(say, f"  {g}: {report.rows()[-1][1] if report.rows() else ''}")
        caches[g] = cache
    return caches


def make_split(recipe: Recipe, caches: dict[str, Path], out: Path, given: str | os.PathLike | None = None) -> Path:
    """``out/split.json``: the given split (a split file, or a shipped model's name), else a new
    seeded song-level split of every genre with the recipe's fractions."""
    from midigenre.dataset import SongSplit

    dest = out / "split.json"
    if given is not None:
        src = _given_split(recipe, given)
        if dest.is_file() and dest.read_bytes() != src.read_bytes():
            raise GenreError(f"{out} was run with another split; give the same --split or another --out")
        if not dest.is_file():
            shutil.copyfile(src, dest)
        return dest
    if dest.is_file():
        return dest
    split = SongSplit.for_sources([(caches[g], g) for g in recipe.all_genres], test_fraction=recipe.test_fraction,
                                  seed=recipe.seed, valid_fraction=recipe.valid_fraction, same_grid=True)
    split.save(dest)
    return dest


def _given_split(recipe: Recipe, given: str | os.PathLike) -> Path:
    """The split file ``given`` names (a file, or a shipped model's name), checked to hold every genre of the recipe."""
    from midigenre.dataset import SongSplit

    src = Path(given)
    if not src.is_file():
        from shared.registry import shipped_model, shipped_model_names

        if str(given) not in shipped_model_names():
            raise GenreError(f"--split {given}: neither a split file nor a shipped model's name")
        src = shipped_model(str(given)) / "split.json"
    split = SongSplit.load(src)
    missing = [g for g in recipe.all_genres if g not in split.genres]
    if missing:
        raise GenreError(f"--split {given} has no songs of {', '.join(missing)}")
    return src


def _model_split(split_path: Path, genres: Sequence[str], dest: Path) -> Path:
    """The split restricted to ``genres`` (what a training of those genres reads)."""
    from midigenre.dataset import SongSplit

    split = SongSplit.load(split_path)
    sub = dataclasses.replace(split, genres={g: split.genres[g] for g in genres},
                              genre_hashes={g: h for g, h in split.genre_hashes.items() if g in genres})
    if len(set(sub.genre_hashes.values())) <= 1:
        sub = dataclasses.replace(sub, settings_hash=next(iter(sub.genre_hashes.values()), sub.settings_hash),
                                  genre_hashes={})
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        sub.save(dest)
    return dest


def train(recipe: Recipe, t: Training, caches: dict[str, Path], split: Path, run: Path, *, device: str = "auto",
          precision: str | None = None, progress=None, on_epoch=None, say=None) -> Path:
    """One training of the recipe into ``run`` (a new run, or the interrupted one continued);
    ``precision`` overrides the training's own."""
    precision = precision or t.precision
    from midigenre.train import GenreSource, run_settings

    resume = (run / "checkpoint.pt").is_file()
    kind = "multi-genre" if recipe.kind == "multi-genre" else "cyclegan"
    cfg, _ = run_settings(run, resume=resume, given={**t.settings, "keep_epochs": True,
                                                     "valid_fraction": recipe.valid_fraction}, kind=kind)
    own = _model_split(split, recipe.genres, run.parent / f".{run.name}-split.json")
    sources = [GenreSource.parse_named(f"{g}={caches[g]}") for g in recipe.genres]
    if recipe.kind == "multi-genre":
        from midigenre.multitrain import MultiGenreTask

        task = MultiGenreTask(sources, run, cfg, split=own, device=device, precision=precision)
    else:
        from midigenre.train import CycleGANTask

        task = CycleGANTask(sources[0], sources[1], run, cfg, split=own, device=device, precision=precision)
    if resume:
        task.resume()
        if task.epoch >= cfg.epochs:
            _say(say, f"training {t.name}: done by an earlier run ({cfg.epochs} epochs)")
            return run
        _say(say, f"training {t.name}: resuming at epoch {task.epoch + 1} of {cfg.epochs}")
    else:
        _say(say, f"training {t.name}: {cfg.epochs} epochs into {run}")
    task.fit(progress=progress, on_epoch=on_epoch)
    return run


def candidates(recipe: Recipe, runs: dict[str, Path]) -> list[Path]:
    """The kept epochs that may be chosen: each training's, up to its ``candidates``."""
    out = []
    for t in recipe.trainings:
        kept = sorted(p for p in (runs[t.name] / "epochs").glob("epoch_*") if (p / "model.json").is_file())
        kept = [p for p in kept if t.candidates is None or int(p.name.split("_")[1]) <= t.candidates]
        if not kept:
            raise GenreError(f"{runs[t.name]} kept no epoch to choose from")
        out += kept
    return out


def run_recipe(recipe: Recipe, genres: dict[str, Sequence[str | os.PathLike]], out: str | os.PathLike, *,
               split: str | os.PathLike | None = None, data: Sequence[str | os.PathLike] = (), device: str = "cpu",
               precision: str | None = None, say: Callable[[str], None] | None = None, progress=None,
               on_epoch=None, command: str | None = None) -> Path:
    """Make the recipe's model into ``out`` (see the module's docstring); returns ``out/model``.

    ``genres``: per genre of the recipe (:attr:`Recipe.all_genres`), its MIDI folders or one
    prepared cache; ``split``: a split file or a shipped model's name (default: a new split);
    ``data``: more folders holding the songs (when caches are given, the validation and held-out
    songs are read from here); ``command``: the command line, for the card."""
    from midigenre import song_quality
    from midigenre.card import write_model
    from midigenre.choose import choose_by_song
    from midigenre.dataset import SongSplit
    from midigenre.judges import train_judges
    from shared.atomic import write_json

    out = Path(out)
    given = {g: [Path(p) for p in v] for g, v in genres.items() if v}
    missing = [g for g in recipe.all_genres if g not in given]
    extra = sorted(set(given) - set(recipe.all_genres))
    if missing or extra:
        raise GenreError(f"the recipe {recipe.name} reads " + ", ".join(recipe.all_genres)
                         + (f"; give --genre {missing[0]}=FOLDER" if missing else f"; it has no genre {extra[0]}"))
    out.mkdir(parents=True, exist_ok=True)
    rec = _record(out)
    if rec.get("recipe") not in (None, recipe.name):
        raise GenreError(f"{out} holds a run of the recipe {rec['recipe']}; give another --out")
    rec.update(recipe=recipe.name, command=command or rec.get("command") or recipe.command())
    (out / "recipe.toml").write_bytes(recipe.path.read_bytes()) if recipe.path else None
    _save_record(out, rec)

    def step(name, fn):
        t0 = time.time()
        res = fn()
        if name not in rec["steps"]:
            rec["steps"][name] = {"seconds": round(time.time() - t0, 1)}
            _save_record(out, rec)
        return res

    if split is not None:  # a split without the recipe's genres fails before any slow step
        _given_split(recipe, split)
    caches = step("prepare", lambda: prepare_caches(recipe, given, out, say=say, progress=progress))
    split_path = step("split", lambda: make_split(recipe, caches, out, split))
    runs = {}
    for t in recipe.trainings:
        runs[t.name] = step(f"train {t.name}", lambda t=t: train(
            recipe, t, caches, split_path, out / "runs" / t.name, device=device, precision=precision,
            progress=progress, on_epoch=on_epoch, say=say))
    judges = step("judges", lambda: train_judges({g: caches[g] for g in recipe.judge_genres}, split_path, out / "judges",
                                                 epochs=recipe.judge_epochs, device=device, say=say))
    folders = [p for g in recipe.genres for p in given[g] if p.is_dir()] + [Path(p) for p in data]
    split_obj = SongSplit.load(split_path)

    def songs(part, limit):
        found = {g: song_quality.split_songs(split_obj, g, part, folders) for g in recipe.all_genres}
        empty = [g for g in recipe.genres if not found[g]]
        if empty:
            raise GenreError(f"none of the {'validation' if part == 'valid' else 'held-out'} songs of {empty[0]} is under "
                             f"{', '.join(map(str, folders)) or 'the given folders'}; give the folder that holds them "
                             "(--genre NAME=FOLDER, or --data)")
        return {g: v[:limit] if limit else v for g, v in found.items()}

    chosen_dir = out / "chosen"
    if not (chosen_dir / "choice.json").is_file():
        t0 = time.time()
        valid = songs("valid", recipe.choose_songs)
        valid = {g: valid[g] for g in recipe.genres}
        _say(say, "choosing on the validation songs (" + ", ".join(f"{g} {len(v)}" for g, v in valid.items())
             + ") by the reference judge …")
        res = choose_by_song(candidates(recipe, runs), chosen_dir / "model", songs=valid,
                             judge=judges["reference"], progress=lambda *a: _say(say, f"  {a[-1]}"))
        write_json(chosen_dir / "choice.json", json.loads(json.dumps(
            {"model": res["model"], "chosen": res["chosen"], "songs": {g: [p.name for p in v] for g, v in valid.items()},
             "seconds": round(time.time() - t0, 1)}, default=float)))
    choice = json.loads((chosen_dir / "choice.json").read_text(encoding="utf-8"))
    held_out = out / "held-out.json"
    if not held_out.is_file():
        t0 = time.time()
        test = songs("test", recipe.measure_songs)
        _say(say, "measuring on the held-out songs (" + ", ".join(f"{g} {len(v)}" for g, v in test.items()) + ") …")
        rows = song_quality.measure_model(chosen_dir / "model", judges, test,
                                          progress=lambda line: _say(say, f"  {line}"))
        write_json(held_out, json.loads(json.dumps(
            {"songs_per_genre": {g: len(v) for g, v in test.items() if g in recipe.genres}, "rows": rows,
             "seconds": round(time.time() - t0, 1)}, default=float)))
    results = json.loads(held_out.read_text(encoding="utf-8"))
    model = write_model(chosen_dir / "model", out / "model", recipe=recipe, record=_record(out), choice=choice,
                        results=results, runs=runs)
    _say(say, f"wrote {model} (its card: {model / 'README.md'})")
    return model
