"""``python -m xltstats.fit``: from a results table to a folder of tables, models and a report.

The analysis itself is :func:`xltstats.pipeline.run_fit` (usable from Python without the disk);
the folder is written by :class:`xltstats.pipeline.FitFolder`, atomically: into a hidden partial
folder beside ``--out`` that is swapped into place at the end, so a failed or interrupted run
leaves ``--out`` as it was and nothing beside it.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from ._io import Terminated, raise_on_sigterm
from .errors import ConfigError, XltstatsError
from .pipeline.config import MAX_SEED

DEFAULT_OUT = "xltstats-out"


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 and <= {MAX_SEED}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m xltstats.fit",
        description="Explain cross-lingual transfer scores with pair features and statistical models.",
    )
    p.add_argument("--data", help="registry dataset name (see --list-datasets) or a results file "
                                  "(.csv .tsv .jsonl .parquet); default: xpos")
    p.add_argument("--out", default=None, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--mirror", help="read published data from this local folder instead of downloading")
    p.add_argument("--config", help="YAML file with settings merged over the defaults")
    p.add_argument("--seed", type=_seed, help="random seed, an integer >= 0 (default from the configuration: 0)")
    p.add_argument("--no-report", action="store_true", help="do not render the HTML report")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--list-datasets", action="store_true", help="list the registry datasets and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    raise_on_sigterm()  # SIGTERM unwinds like Ctrl-C: nothing partial is left
    try:
        if args.list_datasets:
            from .datasets import dataset_info, list_datasets

            for name in list_datasets():
                print(f"{name}\t{dataset_info(name)['title']}")
            return 0
        run(args, argv)
    except XltstatsError as exc:
        print(f"xltstats.fit: error: {_name_the_data(exc, args)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"xltstats.fit: interrupted ({name}); {args.out or DEFAULT_OUT} was left as it was before this "
              "run (nothing partial is left beside it)", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    return 0


def _name_the_data(exc: Exception, args) -> str:
    """The message, led by the data file when the error came from a model fit that does not know
    which file its rows were read from ("too few rows", "every score is 0.5", ...)."""
    message = str(exc)
    data = getattr(args, "data", None)
    if data and Path(data).is_file() and str(data) not in message and Path(data).name not in message:
        return f"{data}: {message}"
    return message


def run(args: argparse.Namespace, argv: list[str]) -> Path:
    """Check the output folder, fit, and write the fit folder (with its report unless --no-report)."""
    from .pipeline.artifacts import FitFolder
    from .pipeline.config import load_config
    from .pipeline.run import run_fit
    from .progress import Progress

    config = load_config(args.config, {"data": args.data, "seed": args.seed})
    if args.no_report:
        config = config.replace(report=False)
    progress = Progress("xltstats.fit", quiet=args.quiet)
    out = Path(args.out or DEFAULT_OUT)
    check_out(out)
    with warnings.catch_warnings():
        if args.quiet:
            # what the models warn about is recorded in the manifest's notes and the report
            warnings.simplefilter("ignore")
        fit = run_fit(config, mirror=args.mirror, progress=progress)
        FitFolder(out).write(fit, argv=argv, mirror=args.mirror, report=config.report, quiet=args.quiet,
                             progress=progress)
    for line in fit.closing_lines():
        progress.info(line)
    progress.info(f"wrote {out}/")
    return out


def check_out(out: Path) -> None:
    """Refuse, before any work, an --out the fit must not replace."""
    if out.is_symlink():
        raise ConfigError(f"--out {out} is a symbolic link (to {os.readlink(out)}); the fit replaces its output "
                          "folder as a whole, so give the real folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    resolved, here = out.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents or out.name in ("", ".", ".."):
        raise ConfigError(f"--out {out} is the current folder or one above it ({resolved}); the fit replaces its "
                          "output folder as a whole: give a folder below the current one, e.g. --out fit")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise ConfigError(f"--out {out} is a non-empty folder that is not an xltstats fit; "
                          "choose another folder or empty it")


if __name__ == "__main__":
    sys.exit(main())
