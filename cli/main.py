"""Top-level ``genre`` group. Heavy libraries (torch, transformers, h5py) are imported inside
the commands that need them, so ``genre --help`` answers at once."""

from __future__ import annotations

import logging
import sys

import click

from shared.errors import GenreError
from shared.version import __version__


class GenreGroup(click.Group):
    """A group whose commands turn GenreError into a one-line ``Error: …`` and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GenreError as err:
            raise click.ClickException(str(err)) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:  # the command line as given, for --nproc to start it again in each process
            ctx.meta["genre.argv"] = list(args)
            ctx.meta["genre.child"] = run_child
        return super().parse_args(ctx, args)

    def group(self, *args, **kwargs):
        kwargs.setdefault("cls", GenreGroup)
        return super().group(*args, **kwargs)


@click.group(cls=GenreGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="genre", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Music genre transfer: MIDI songs (GANs on piano rolls that keep the tune) and recordings
    (transcribed and re-arranged, or steered by a genre classifier's gradients).

    \b
    Start with:
      genre midi transfer song.mid --to classical -o song_classical.mid     # the shipped jazz-classical-melody
      genre model                                                            # the shipped models
      genre midi train --recipe jazz-classical-melody --genre jazz=DIR …    # make your own
    Every command has --help.
    """
    from shared.distributed import env_rank

    if env_rank() > 0:  # one of several training processes (torchrun, --nproc): rank 0 speaks for all
        _quiet()
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run_child(argv: list[str]) -> None:
    """One process of ``--nproc N``: the ``genre`` command line again (``cli.common.relaunch``
    finds this function in the root context, so the commands' helpers need not import this module)."""
    main(args=argv, prog_name="genre")


def _quiet() -> None:
    import os

    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process

    def excepthook(kind, err, tb):  # a crash of this process alone is still shown
        import traceback

        print(f"rank {os.environ.get('RANK')}:", "".join(traceback.format_exception(kind, err, tb)), file=sys.__stderr__)

    sys.excepthook = excepthook


from cli.audio import audio, render  # noqa: E402
from cli.midi import midi  # noqa: E402
from cli.transcribe import arrange, arrange_as_transfer, transcribe  # noqa: E402
from cli.report import report  # noqa: E402
from cli.model import model  # noqa: E402

main.add_command(midi)
main.add_command(audio)
main.add_command(render)
audio.add_command(transcribe)  # genre audio transcribe / arrange (audio → MIDI → another genre)
audio.add_command(arrange)
audio.add_command(arrange_as_transfer)  # the name it had before, hidden: scripts that call it keep working
main.add_command(report)
main.add_command(model)


if __name__ == "__main__":
    main()
