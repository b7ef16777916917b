"""``python -m srhm_datasets ...`` runs the ``srhm`` command line (also for torchrun)."""

from .cli import main

main()
