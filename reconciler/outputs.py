"""`reconcile outputs`: what a person or a script needs from a deployed stack, read live."""
from __future__ import annotations

from reconciler.errors import PlanError
from reconciler.kinds import iam_role, lambda_function, lambda_function_url, s3_bucket
from reconciler.planner import read_live
from reconciler.target import Target

_KINDS = (s3_bucket, iam_role, lambda_function, lambda_function_url)


def read_outputs(spec, clients, *, target: Target) -> dict[str, str | None]:
    wants, lives, problems = read_live(clients, spec, target, _KINDS)
    if problems:
        raise PlanError(problems)
    live = {kind.TYPE: lives[f"{kind.TYPE}.{want['name']}"] or {} for kind, want in wants}
    bucket = live.get(s3_bucket.TYPE, {})
    function = live.get(lambda_function.TYPE, {})
    return {
        "function_url": live.get(lambda_function_url.TYPE, {}).get("url"),
        "bucket": bucket.get("name"),
        "database_key": spec.bucket["database_key"] if bucket else None,
        "role_arn": live.get(iam_role.TYPE, {}).get("arn"),
        "function_arn": function.get("arn"),
        "image_digest": function.get("image_digest"),
    }
