"""lambda_function_url against moto: CORS lists compare as sets and header names without
case; each managed attribute drifted by hand is detected and repaired; CORS keys canvas.yaml
leaves out are unmanaged, and kept when the block is rewritten; no `url:` section, no URL.

moto 5.x ignores InvokeMode in UpdateFunctionUrlConfig, so the invoke_mode repair is checked
by the call the engine sends, not by a moto round trip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from lambda_harness import FUNCTION

from reconciler.plan import Action, AttributeChange

ORIGINS = ["https://app.example.com", "https://admin.example.com"]
METHODS = ["GET", "POST"]
ALLOW_HEADERS = ["Content-Type", "X-Api-Key"]
EXPOSE_HEADERS = ["X-Request-Id", "X-Trace"]
CORS = {"allow_origins": ORIGINS, "allow_methods": METHODS, "allow_headers": ALLOW_HEADERS,
        "expose_headers": EXPOSE_HEADERS, "max_age": 300, "allow_credentials": True}
# canvas.yaml key → the Lambda API's Cors key, for reading live values independently of the engine.
API = {"allow_origins": "AllowOrigins", "allow_methods": "AllowMethods", "allow_headers": "AllowHeaders",
       "expose_headers": "ExposeHeaders", "max_age": "MaxAge", "allow_credentials": "AllowCredentials"}


def every_cors_key(data: dict) -> None:
    data["url"]["cors"] = dict(CORS)


@pytest.fixture
def cors_deployed(deploy):
    """The stack deployed with every CORS key managed."""
    return deploy(every_cors_key)


def live(console, path: str) -> Any:
    config = console.url_config()
    if path == "auth_type":
        return config["AuthType"]
    return config["Cors"].get(API[path.split(".", 1)[1]])


def test_cors_sets_in_another_order_and_header_case_are_no_drift(cors_deployed, lambda_console):
    lambda_console.set_cors(AllowOrigins=ORIGINS[::-1], AllowMethods=METHODS[::-1],
                            AllowHeaders=["x-api-key", "content-type"], ExposeHeaders=["x-trace", "X-REQUEST-ID"])
    assert lambda_console.url_config()["Cors"]["AllowHeaders"] == ["x-api-key", "content-type"], "changed by hand"

    plan = cors_deployed.plan()

    assert cors_deployed.change(plan, "lambda_function_url").action is Action.NOOP
    assert not plan.has_changes


@dataclass(frozen=True)
class UrlDrift:
    path: str
    by_hand: dict  # keyword arguments of UpdateFunctionUrlConfig, or Cors keys when `cors`
    after: Any
    cors: bool = True


URL_DRIFTS = {
    "auth_type": UrlDrift("auth_type", {"AuthType": "AWS_IAM"}, "NONE", cors=False),
    "allow_origins": UrlDrift("cors.allow_origins", {"AllowOrigins": ["https://evil.example.net"]}, ORIGINS),
    "allow_origins-one-more": UrlDrift("cors.allow_origins", {"AllowOrigins": ORIGINS + ["https://x.example"]},
                                       ORIGINS),
    "allow_methods": UrlDrift("cors.allow_methods", {"AllowMethods": ["GET"]}, METHODS),
    "allow_headers": UrlDrift("cors.allow_headers", {"AllowHeaders": ["content-type"]}, ALLOW_HEADERS),
    "expose_headers": UrlDrift("cors.expose_headers", {"ExposeHeaders": ["x-request-id"]}, EXPOSE_HEADERS),
    "max_age": UrlDrift("cors.max_age", {"MaxAge": 60}, 300),
    "allow_credentials": UrlDrift("cors.allow_credentials", {"AllowCredentials": False}, True),
}


@pytest.mark.parametrize("drift", URL_DRIFTS.values(), ids=URL_DRIFTS.keys())
def test_url_attribute_changed_by_hand_is_detected_and_repaired(cors_deployed, lambda_console, drift):
    if drift.cors:
        lambda_console.set_cors(**drift.by_hand)
    else:
        lambda_console.lam.update_function_url_config(FunctionName=FUNCTION, **drift.by_hand)
    before = live(lambda_console, drift.path)

    plan = cors_deployed.plan()

    [change] = plan.pending
    assert (change.type, change.action) == ("lambda_function_url", Action.UPDATE)
    assert change.attributes == (AttributeChange(drift.path, before, drift.after),)
    assert cors_deployed.apply(plan).result.ok
    assert live(lambda_console, drift.path) == drift.after
    assert {key: live(lambda_console, f"cors.{key}") for key in CORS} == CORS, "the rest of the block is intact"
    assert not cors_deployed.plan().has_changes


def test_invoke_mode_drift_is_detected_and_the_update_sends_it(deployed, lambda_console):
    lam = lambda_console.lam
    cors = lambda_console.url_config()["Cors"]
    lam.delete_function_url_config(FunctionName=FUNCTION)
    lam.create_function_url_config(FunctionName=FUNCTION, AuthType="NONE", InvokeMode="RESPONSE_STREAM", Cors=cors)

    plan = deployed.plan()

    [change] = plan.pending
    assert change.attributes == (AttributeChange("invoke_mode", "RESPONSE_STREAM", "BUFFERED"),)
    assert deployed.apply(plan).result.ok
    assert deployed.calls.params("UpdateFunctionUrlConfig") == [
        {"FunctionName": FUNCTION, "AuthType": "NONE", "InvokeMode": "BUFFERED"}]


def test_cors_keys_left_out_of_canvas_yaml_are_unmanaged_and_kept(deployed, lambda_console):
    """canvas.yaml here manages allow_origins, allow_methods and allow_headers only."""
    lambda_console.set_cors(MaxAge=600, ExposeHeaders=["x-trace"])

    assert not deployed.plan().has_changes

    lambda_console.set_cors(AllowOrigins=["https://evil.example.net"])
    plan = deployed.plan()
    [change] = plan.pending
    assert change.changed_paths == ("cors.allow_origins",)
    assert deployed.apply(plan).result.ok
    assert lambda_console.url_config()["Cors"] == {"AllowOrigins": ["*"], "AllowMethods": ["*"], "AllowHeaders": ["*"],
                                                   "MaxAge": 600, "ExposeHeaders": ["x-trace"]}


def test_no_url_section_plans_no_url_and_no_permissions(stack):
    stack.write(lambda data: data.pop("url"))

    plan = stack.plan()

    assert [c.type for c in plan.changes] == [
        "s3_bucket", "ecr_repository", "iam_role", "container_image", "lambda_function"]


def test_a_url_made_by_hand_is_left_alone_when_canvas_yaml_has_no_url_section(deployed, lambda_console):
    deployed.write(lambda data: data.pop("url"))

    plan = deployed.plan()

    assert {c.type for c in plan.changes}.isdisjoint({"lambda_function_url", "lambda_permission"})
    assert not plan.has_changes
    assert deployed.apply(plan).lines == []
    assert lambda_console.url_config()["AuthType"] == "NONE"
    assert len(lambda_console.statements()) == 2
