"""``python -m reasonseg_x.cli``: the console script, runnable where it is not on PATH (torchrun -m)."""

from reasonseg_x.cli import main

main()
