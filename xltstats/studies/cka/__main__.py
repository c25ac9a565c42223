"""``python -m xltstats.studies.cka --dump DIR --out DIR``: CKA and mingling tables from a hidden-state dump.

The dump folder is the runner's ``<run_dir>/representations`` or any folder in the same format
(:mod:`xltstats.studies.cka.dumps`: ``manifest.json`` + ``<checkpoint>/<language>.npz``).  Writes
``cka.csv`` (every language against ``--reference``, or all pairs with ``--all-pairs``, per layer and
kernel, plus each checkpoint against ``--baseline``) and ``mingling.csv``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...errors import run_command


def _parser():
    p = argparse.ArgumentParser(prog="python -m xltstats.studies.cka", description=__doc__.split("\n")[0])
    p.add_argument("--dump", required=True, help="hidden-state dump folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--kernel", action="append", help="linear, rbf-muller, rbf-kornblith[-T], each [-debiased]; "
                                                      "repeatable (default: linear)")
    p.add_argument("--reference", default="eng", help="language every other is compared with")
    p.add_argument("--all-pairs", action="store_true", help="every unordered language pair instead")
    p.add_argument("--baseline", default="pretrained", help="checkpoint the others are compared with")
    p.add_argument("--layers", help="comma-separated layers (default: all; 0 = embeddings)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--n-batches", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=5, help="neighbours for the k-NN language purity")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    return run_command("xltstats.studies.cka", run, args)


def run(args) -> Path:
    from ...errors import InputError
    from ...models.tables import write_table
    from . import cka_table, mingling_table, read_dump

    layers = None
    if args.layers:
        try:
            layers = [int(x) for x in args.layers.split(",")]
        except ValueError:
            raise InputError(f"--layers must be comma-separated integers, got {args.layers!r}") from None
    dump = read_dump(args.dump)  # checked (sentence counts, layers) before any computation
    kernels = args.kernel or ["linear"]
    table = cka_table(dump, kernels=kernels, reference=None if args.all_pairs else args.reference,
                      layers=layers, n_boot=args.n_boot, n_batches=args.n_batches, seed=args.seed,
                      baseline=args.baseline)
    ming = mingling_table(dump, layers=layers, k=args.k, kernel=kernels[0])
    out = Path(args.out)
    write_table(table, out, "cka", formats=("csv",))
    write_table(ming, out, "mingling", formats=("csv",))
    print(f"wrote {len(table)} CKA rows and {len(ming)} mingling rows to {out}")
    return out


if __name__ == "__main__":
    sys.exit(main())
