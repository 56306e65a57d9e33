"""The Lambda runtime: a SQLite database that lives in S3, served by a web app behind a Function URL.

Entry points: ``runtime.handler.handler`` (Lambda), ``python -m runtime serve`` (local),
``python -m runtime.extension`` (the Lambda extension doing the final sync at shutdown).
This package never imports ``reconciler``: it ships alone inside the container image.
See DESIGN.md for how the pieces fit and why.
"""
