"""The ``main`` of a study command (``python -m xltstats.studies.<study>``): one parser for them all."""
from __future__ import annotations

import argparse

from ..errors import run_command


def study_main(module: str, doc: str, inputs: dict[str, dict], options: dict[str, dict], run, argv=None) -> int:
    """Parse ``argv`` and return the exit status of ``run(args)`` (:func:`~xltstats.errors.run_command`).

    The parser is ``python -m <module>``, described by the first line of ``doc``; exactly one of
    ``inputs`` is required, then come ``options``; each maps a flag to its ``add_argument`` keywords.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    for flag, keywords in inputs.items():
        source.add_argument(flag, **keywords)
    for flag, keywords in options.items():
        parser.add_argument(flag, **keywords)
    return run_command(module, run, parser.parse_args(argv))
