"""canvas-reconcile: declare a SQLite-on-S3 Lambda app once in canvas.yaml; plan and apply it."""

__version__ = "0.1.0"
