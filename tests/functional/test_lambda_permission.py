"""lambda_permission against moto: both public-URL statements exist exactly while the URL's
auth type is NONE; a missing one is created, a changed one replaced, and both removed (after
the URL's own update) when the URL switches to AWS_IAM. Statements that are not ours stay.

get_policy's two shapes — AWS's Condition block and moto's flat fields — normalize alike.
"""
from __future__ import annotations

import pytest
from lambda_harness import ACCOUNT, FUNCTION, REGION

from reconciler.kinds.lambda_permission import URL_ACCESS, URL_INVOKE, normalize_statement
from reconciler.plan import Action, AttributeChange

FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
# The two statements as AWS's get_policy returns them: the URL conditions in a Condition block.
AWS_STATEMENTS = {
    URL_ACCESS: {"Sid": URL_ACCESS, "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunctionUrl",
                 "Resource": FUNCTION_ARN,
                 "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}},
    URL_INVOKE: {"Sid": URL_INVOKE, "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction",
                 "Resource": FUNCTION_ARN,
                 "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}},
}
NORMALIZED = {
    URL_ACCESS: {"action": "lambda:InvokeFunctionUrl", "principal": "*", "function_url_auth_type": "NONE",
                 "invoked_via_function_url": None},
    URL_INVOKE: {"action": "lambda:InvokeFunction", "principal": "*", "function_url_auth_type": None,
                 "invoked_via_function_url": True},
}


def test_a_public_url_gets_both_statements(deployed, lambda_console):
    statements = lambda_console.statements()

    assert set(statements) == {URL_ACCESS, URL_INVOKE}
    access, invoke = statements[URL_ACCESS], statements[URL_INVOKE]
    # moto's flat shape: the conditions beside the statement, not in a Condition block.
    assert (access["Action"], access["Principal"], access["FunctionUrlAuthType"], access["Resource"]) == (
        "lambda:InvokeFunctionUrl", "*", "NONE", FUNCTION_ARN)
    assert (invoke["Action"], invoke["Principal"], invoke["InvokedViaFunctionUrl"]) == (
        "lambda:InvokeFunction", "*", True)


@pytest.mark.parametrize("sid", [URL_ACCESS, URL_INVOKE])
def test_both_shapes_of_a_statement_normalize_alike(deployed, lambda_console, sid):
    from_moto = lambda_console.statements()[sid]
    assert "Condition" not in from_moto, "moto's flat shape, as this test means to cover"

    assert normalize_statement(from_moto) == normalize_statement(AWS_STATEMENTS[sid]) == NORMALIZED[sid]


def test_other_spellings_of_the_same_statement_normalize_alike():
    spelled_out = {**AWS_STATEMENTS[URL_INVOKE], "Action": ["lambda:InvokeFunction"], "Principal": {"AWS": "*"},
                   "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": True}}}

    assert normalize_statement(spelled_out) == NORMALIZED[URL_INVOKE]


@pytest.mark.parametrize("sid", [URL_ACCESS, URL_INVOKE])
def test_a_statement_removed_by_hand_is_created_again(deployed, lambda_console, sid):
    lambda_console.lam.remove_permission(FunctionName=FUNCTION, StatementId=sid)

    plan = deployed.plan()

    assert {c.name: c.action for c in plan.changes if c.type == "lambda_permission"} == {
        sid: Action.CREATE, ({URL_ACCESS, URL_INVOKE} - {sid}).pop(): Action.NOOP}
    assert len(plan.pending) == 1
    assert deployed.apply(plan).result.ok
    assert set(lambda_console.statements()) == {URL_ACCESS, URL_INVOKE}
    assert not deployed.plan().has_changes


@pytest.mark.parametrize("by_hand, attribute", [
    ({"Principal": ACCOUNT, "FunctionUrlAuthType": "NONE"}, AttributeChange("principal", ACCOUNT, "*")),
    ({"Principal": "*"}, AttributeChange("function_url_auth_type", None, "NONE")),
], ids=["principal", "condition-dropped"])
def test_a_statement_changed_by_hand_is_replaced(deployed, lambda_console, by_hand, attribute):
    lam = lambda_console.lam
    lam.remove_permission(FunctionName=FUNCTION, StatementId=URL_ACCESS)
    lam.add_permission(FunctionName=FUNCTION, StatementId=URL_ACCESS, Action="lambda:InvokeFunctionUrl", **by_hand)

    plan = deployed.plan()

    [change] = plan.pending
    assert (change.address, change.action) == (f"lambda_permission.{URL_ACCESS}", Action.REPLACE)
    assert change.attributes == (attribute,)
    applied = deployed.apply(plan)
    assert applied.lines[0].startswith(f"[1/1] replace lambda_permission.{URL_ACCESS} … SUCCESS")
    assert normalize_statement(lambda_console.statements()[URL_ACCESS]) == NORMALIZED[URL_ACCESS]
    assert not deployed.plan().has_changes


def test_switching_to_aws_iam_removes_both_after_the_url_update(deployed, lambda_console):
    lambda_console.lam.add_permission(FunctionName=FUNCTION, StatementId="AllowS3Invoke",
                                      Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    deployed.write(lambda data: data["url"].update(auth_type="AWS_IAM"))

    plan = deployed.plan()

    assert [(c.address, c.action) for c in plan.pending] == [
        (f"lambda_function_url.{FUNCTION}", Action.UPDATE),
        (f"lambda_permission.{URL_ACCESS}", Action.DELETE),
        (f"lambda_permission.{URL_INVOKE}", Action.DELETE)]
    assert deployed.change(plan, "lambda_function_url").attributes == (AttributeChange("auth_type", "NONE", "AWS_IAM"),)
    removed = {c.name: c.attributes for c in plan.pending if c.type == "lambda_permission"}
    assert removed[URL_INVOKE] == (AttributeChange("action", "lambda:InvokeFunction", None),
                                   AttributeChange("principal", "*", None),
                                   AttributeChange("invoked_via_function_url", True, None))
    applied = deployed.apply(plan)
    assert [line.split(" … ")[0] for line in applied.lines] == [
        f"[1/3] update lambda_function_url.{FUNCTION}",
        f"[2/3] delete lambda_permission.{URL_INVOKE}",
        f"[3/3] delete lambda_permission.{URL_ACCESS}"]
    assert applied.result.ok, applied.lines
    assert lambda_console.url_config()["AuthType"] == "AWS_IAM"
    assert set(lambda_console.statements()) == {"AllowS3Invoke"}, "a statement that is not ours stays"
    after = deployed.plan()
    assert not after.has_changes
    assert [c.type for c in after.changes].count("lambda_permission") == 0, "absent and wanted absent: nothing"

    deployed.write(lambda data: data["url"].update(auth_type="NONE"))
    deployed.converge()
    assert set(lambda_console.statements()) == {"AllowS3Invoke", URL_ACCESS, URL_INVOKE}


def test_a_plan_reads_the_function_policy_once_for_both_statements(deployed, stack):
    stack.calls.clear()
    assert not stack.plan().has_changes
    assert stack.calls.operations.count("GetPolicy") == 1
    # Outside a plan's read wave nothing is shared: each read is its own call.
    from reconciler.kinds import lambda_permission
    stack.calls.clear()
    for sid in (URL_ACCESS, URL_INVOKE):
        assert lambda_permission.read(stack.clients, {"name": sid, "function": FUNCTION}) is not None
    assert stack.calls.operations.count("GetPolicy") == 2
