"""``rmflow <command>``: the one entry point every Snakemake rule, sbatch script and test calls.

The parser is built from the commands' option dataclasses (rmflow.commands, rmflow.options); no logic lives here.
User mistakes (``RmflowError``) print one line and exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

from rmflow import methods
from rmflow.commands import COMMANDS
from rmflow.errors import RmflowError
from rmflow.options import add_command, add_options, from_namespace, opt


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
    try:
        from rmflow.devices import require_gpus

        require_gpus(args.rule, args.gpus)
        command.run(from_namespace(command.options, args))
    except RmflowError as exc:
        print(f"rmflow {command.name}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
