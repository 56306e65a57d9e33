"""lambda_permission: the resource-policy statements a public Function URL needs.

Since October 2025 AWS requires two for a public URL, or callers get 403 — the seed guide
adds only the first: lambda:InvokeFunctionUrl with FunctionUrlAuthType NONE, and
lambda:InvokeFunction with InvokedViaFunctionUrl true. Both are present exactly when
`url.auth_type` is NONE and removed when it is AWS_IAM. A statement cannot be edited, so a
changed one is replaced (removed, then added).

AWS's get_policy returns the URL conditions as a Condition block; moto returns them as flat
fields beside the statement. Both shapes normalize to the same document.
"""
from __future__ import annotations

import json

from reconciler.aws import absent_on
from reconciler.diff import Field
from reconciler.kinds.defaults import keep_desired, no_note

TYPE = "lambda_permission"
SERVICE = "lambda"
REPLACE_ON_CHANGE = True

URL_ACCESS = "FunctionURLAllowPublicAccess"
URL_INVOKE = "FunctionURLInvokeAllowPublicAccess"

FIELDS = (
    Field("action", compare_as=lambda a: a.lower() if isinstance(a, str) else a),
    Field("principal"),
    Field("function_url_auth_type"),
    Field("invoked_via_function_url"),
)

_STATEMENTS: dict[str, dict] = {
    URL_ACCESS: {"action": "lambda:InvokeFunctionUrl", "principal": "*", "function_url_auth_type": "NONE"},
    URL_INVOKE: {"action": "lambda:InvokeFunction", "principal": "*", "invoked_via_function_url": True},
}


def desired(spec, target) -> list[dict] | None:
    if spec.url is None:
        return None
    public = spec.url["auth_type"] == "NONE"
    return [{"name": sid, "function": spec.function["name"], "absent": not public, **statement}
            for sid, statement in _STATEMENTS.items()]


def read(clients, want: dict) -> dict | None:
    # Both statements live in one policy document: in a plan it is read once for the two.
    answer = clients.read_once(("lambda.get_policy", want["function"]), lambda: absent_on(
        ("ResourceNotFoundException",), lambda: clients.awslambda.get_policy(FunctionName=want["function"])))
    if answer is None:
        return None
    for statement in json.loads(answer["Policy"]).get("Statement", []):
        if statement.get("Sid") == want["name"]:
            return {"name": want["name"], "function": want["function"], **normalize_statement(statement)}
    return None


def normalize_statement(statement: dict) -> dict:
    condition = statement.get("Condition") or {}
    auth_type = condition.get("StringEquals", {}).get("lambda:FunctionUrlAuthType",
                                                      statement.get("FunctionUrlAuthType"))
    via_url = condition.get("Bool", {}).get("lambda:InvokedViaFunctionUrl", statement.get("InvokedViaFunctionUrl"))
    action = statement.get("Action")
    if isinstance(action, list) and len(action) == 1:
        action = action[0]
    return {
        "action": action,
        "principal": _principal(statement.get("Principal")),
        "function_url_auth_type": auth_type,
        "invoked_via_function_url": None if via_url is None else str(via_url).lower() == "true",
    }


def _principal(value):
    if isinstance(value, dict) and list(value) == ["AWS"]:
        value = value["AWS"]
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def create(clients, want: dict) -> None:
    kwargs = {"FunctionName": want["function"], "StatementId": want["name"],
              "Action": want["action"], "Principal": want["principal"]}
    if want.get("function_url_auth_type"):
        kwargs["FunctionUrlAuthType"] = want["function_url_auth_type"]
    if want.get("invoked_via_function_url") is not None:
        kwargs["InvokedViaFunctionUrl"] = want["invoked_via_function_url"]
    clients.awslambda.add_permission(**kwargs)


def delete(clients, have: dict) -> None:
    clients.awslambda.remove_permission(FunctionName=have["function"], StatementId=have["name"])


# The interface's optional members this kind has no use for (kinds.Kind).
CREATE_CALL_FIELDS: tuple[str, ...] = ()
CREATE_ON_CHANGE = False
resolve = keep_desired
note = no_note
update = None  # a statement cannot be edited: a changed one is replaced (REPLACE_ON_CHANGE)
