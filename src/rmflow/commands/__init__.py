"""The commands behind ``rmflow <command>``, grouped by what they work on; each calls one module's ``main``.

Every command is a ``rmflow.options.Command``: its name, its help, the dataclass of its options (from which
rmflow.cli builds the parser, so each default is written once, there) and the function it runs.
"""

from __future__ import annotations

from rmflow.commands import cluster, data, scoring, serving, training

COMMANDS = [*data.COMMANDS, *cluster.COMMANDS, *training.COMMANDS, *scoring.COMMANDS, *serving.COMMANDS]
