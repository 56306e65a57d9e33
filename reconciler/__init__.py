"""canvas-reconcile: declare once in canvas.yaml, plan and apply against live AWS."""
