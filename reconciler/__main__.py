"""`python -m reconciler` is the `reconcile` command."""
from reconciler.cli import main

main(prog_name="reconcile")
