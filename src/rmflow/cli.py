"""``rmflow <command>``: the one entry point every Snakemake rule, sbatch script and test calls.

The parser is built from the commands' option dataclasses (rmflow.commands, rmflow.options); no logic lives here.
User mistakes (``RmflowError``) print one line and exit 2, and so do failures of the place a command reads or writes
(a full, read-only or forbidden disk; input nested too deeply to parse): those are the machine's, not a bug. Outputs
are checked writable before a command starts, and what a failed command already put in place is taken back, so a
failure leaves nothing. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

from rmflow import io, methods
from rmflow.commands import COMMANDS
from rmflow.errors import RmflowError
from rmflow.options import add_command, add_options, from_namespace, opt, outputs


@dataclass(kw_only=True)
class Global:
    """Options before the command's name (``rmflow --rule R --gpus N train ...``)."""

    verbose: bool = opt(False, "debug logging", short="-v")
    rule: str | None = opt(None, "the workflow rule running this command (named in errors)")
    gpus: int = opt(0, "GPUs the job asked for: refuse to start when fewer CUDA devices are visible")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmflow", description=__doc__.splitlines()[0])
    add_options(parser, Global)
    sub = parser.add_subparsers(dest="command_name", required=True)
    for command in COMMANDS:
        add_command(sub, command)
    # a method with rules of its own brings the command those rules call (SSRM's rounds: rmflow ssrm <step>)
    for name in methods.available():
        module = methods.get(name)
        if methods.has_hook(module, "COMMAND"):
            add_command(sub, methods.hook(module, "COMMAND"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = args.command
    io.written.clear()
    io.created.clear()
    try:
        from rmflow.devices import require_gpus

        options = from_namespace(command.options, args)
        for option, path, kind in outputs(options):
            try:
                io.check_writable(path, kind)
            except RmflowError as exc:
                raise RmflowError(f"{exc} (--{option.replace('_', '-')})") from exc
        require_gpus(args.rule, args.gpus)
        command.run(options)
    except Exception as exc:
        taken = io.take_back_written()  # a failure leaves no outputs, a bug's included
        message = _error_line(exc)
        if message is None:
            raise
        print(f"rmflow {command.name}: error: {message}", file=sys.stderr)
        if taken:
            print(f"rmflow {command.name}: removed what it had written: {', '.join(map(str, taken))}",
                  file=sys.stderr)
        return 2
    return 0


def _error_line(exc: BaseException) -> str | None:
    """The one line for a user's or the machine's failure; None for a bug (its traceback is kept)."""
    if isinstance(exc, RmflowError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.errno is not None:
        return f"{exc.filename}: {exc.strerror}"
    if io.write_failure(exc):
        return f"cannot write an output: {str(exc).splitlines()[-1]}"
    if isinstance(exc, RecursionError):
        return f"input nested too deeply to read ({exc})"
    return None


if __name__ == "__main__":
    sys.exit(main())
