"""`python -m reconciler` is the `reconcile` command."""
from reconciler.cli import entry

entry()
