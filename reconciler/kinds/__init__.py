"""The resource kinds, one module each, all with the same small interface.

Each module has TYPE, SERVICE, FIELDS and name(spec), desired(spec, region) -> dict,
read(clients, want) -> dict | None (read-only calls; None when absent),
create(clients, want) and update(clients, want, have, paths).
KINDS is in dependency order: apply creates in this order and deletes in reverse.
"""
from reconciler.kinds import ecr_repository, iam_role, s3_bucket

KINDS = (s3_bucket, ecr_repository, iam_role)
BY_TYPE = {kind.TYPE: kind for kind in KINDS}
