"""The ``xltstats`` console script: ``xltstats COMMAND [ARGS]`` runs ``python -m xltstats.COMMAND
[ARGS]`` (same options, output and exit status), and ``xltstats --version`` prints the version."""
from __future__ import annotations

import importlib
import sys

# command -> (module with main(argv), one-line description)
COMMANDS = {
    "fit": ("xltstats.fit", "analyse a results table: features, OLS, mixed model, CV, report"),
    "predict": ("xltstats.predict", "predict scores for new (source, target) pairs from a fit"),
    "plan": ("xltstats.plan", "which languages to annotate, and how many examples each, from a fit"),
    "report": ("xltstats.report.__main__", "render a fit folder's HTML report"),
    "reproduce": ("xltstats.reproduce", "rerun a fit from its manifest and compare every table"),
    "features": ("xltstats.features.__main__", "pair features for any languages"),
    "datasets": ("xltstats.datasets.registry", "list, cite, fetch and verify the published data"),
    "experiments": ("xltstats.experiments.__main__", "fine-tuning grids on GPUs"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: xltstats [--version] [--help] COMMAND [ARGS ...]", "",
             "Explain and predict cross-lingual transfer in multilingual language models.", "",
             "commands (each also runs as `python -m xltstats.COMMAND`; "
             "`xltstats COMMAND --help` for its options):"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"xltstats {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.stderr.write(f"error: unknown command {command!r}; choose one of "
                         f"{', '.join(COMMANDS)}\n\n" + _usage())
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    try:
        status = module.main(rest)
    except SystemExit as stop:  # argparse's --help and usage errors
        code = stop.code
        status = code if isinstance(code, int) else (0 if code is None else 2)
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
