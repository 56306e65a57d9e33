"""The resource kinds, one module each, all with the same small interface.

Each module has TYPE, SERVICE (the boto3 client it reads with), FIELDS (the comparable
attributes) and:
  desired(spec, target) -> dict | list[dict] | None   None: canvas.yaml does not declare it;
                                                      a doc with "absent": True must not exist
  read(clients, want) -> dict | None                  read-only calls; None when absent
  create(clients, want); update(clients, want, have, paths); delete(clients, have)
and optionally resolve(want, lives) (desired values only live AWS knows, such as the digest
a tag points at), note(want, have) (a line for the plan), REPLACE_ON_CHANGE (a change is a
delete then a create), CREATE_ON_CHANGE (a change is a create beside the old one: an image) and
CREATE_CALL_FIELDS (what the create call itself sets: recreate.py adopts an untagged resource
that already exists only when these match).
KINDS is in dependency order: apply creates in this order and deletes in reverse.
"""
from reconciler.kinds import (
    container_image, ecr_repository, iam_role, lambda_function, lambda_function_url, lambda_permission, s3_bucket,
)

# The role comes before the image: it is independent of it, and made early it has had time
# to propagate through IAM before the function that assumes it is created.
KINDS = (s3_bucket, ecr_repository, iam_role, container_image, lambda_function, lambda_function_url,
         lambda_permission)
FOUNDATION = (s3_bucket, ecr_repository, iam_role)
BY_TYPE = {kind.TYPE: kind for kind in KINDS}
