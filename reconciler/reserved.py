"""The names canvas-reconcile reserves for itself in the user's account, each defined once here
and imported wherever it is written, read or refused in canvas.yaml."""
from __future__ import annotations

# Set on every resource the tool makes: the stack that owns it (destroy and adoption trust it).
STACK_TAG = "canvas:stack"
# Keys in the stack's bucket holding the tool's record and lock, out of the runtime role's reach.
RECORD_PREFIX = "canvas/"
# Image tags named for a build context's content hash; the repository's lifecycle keeps the newest.
CONTENT_TAG_PREFIX = "canvas-"
