"""``python -m xltstats.datasets [--mirror DIR] [NAME ...]``: check registered files against their sha256."""
from .registry import main

raise SystemExit(main())
