"""lambda_function_url: the function's public HTTPS endpoint (auth type, invoke mode, CORS).

AWS treats the CORS lists as sets and stores header names lowercased, so lists compare as
sets and header names case-insensitively — a known source of permanent false drift.
URLs carry no tags: a URL belongs to the stack its function belongs to.
"""
from __future__ import annotations

from reconciler.aws import absent_on
from reconciler.diff import Field
from reconciler.kinds.defaults import keep_desired, no_note

TYPE = "lambda_function_url"
SERVICE = "lambda"


def _lowered(values):
    return None if values is None else sorted({v.lower() for v in values})


FIELDS = (
    Field("auth_type"),
    Field("invoke_mode"),
    Field("cors.allow_origins", unordered=True),
    Field("cors.allow_methods", unordered=True,
          compare_as=lambda v: None if v is None else sorted({m.upper() for m in v})),
    Field("cors.allow_headers", compare_as=_lowered),
    Field("cors.expose_headers", compare_as=_lowered),
    Field("cors.max_age"),
    Field("cors.allow_credentials"),
)
# canvas.yaml key → the Cors key of the Lambda API.
_CORS = {
    "allow_origins": "AllowOrigins", "allow_methods": "AllowMethods", "allow_headers": "AllowHeaders",
    "expose_headers": "ExposeHeaders", "max_age": "MaxAge", "allow_credentials": "AllowCredentials",
}
_LISTS = {"allow_origins", "allow_methods", "allow_headers", "expose_headers"}


def desired(spec, target) -> dict | None:
    url = spec.url
    if url is None:
        return None  # no url: section, no URL managed
    return {
        "name": spec.function["name"],
        "auth_type": url["auth_type"],
        "invoke_mode": url.get("invoke_mode"),
        "cors": dict(url["cors"]) if url.get("cors") is not None else None,
    }


def read(clients, want: dict) -> dict | None:
    answer = absent_on(("ResourceNotFoundException",),
                       lambda: clients.awslambda.get_function_url_config(FunctionName=want["name"]))
    if answer is None:
        return None
    cors = answer.get("Cors") or {}
    return {
        "name": want["name"],
        "url": answer["FunctionUrl"],
        "auth_type": answer["AuthType"],
        # moto answers "Buffered" for a URL created without InvokeMode; AWS says BUFFERED.
        "invoke_mode": (answer.get("InvokeMode") or "BUFFERED").upper(),
        "cors": {key: cors.get(api, [] if key in _LISTS else None) for key, api in _CORS.items()},
    }


def _cors(want: dict, have: dict | None) -> dict:
    """The whole Cors block to send: canvas.yaml's values over the live ones it leaves unset,
    since the API replaces the block as a whole."""
    declared = {k: v for k, v in (want.get("cors") or {}).items() if v is not None}
    merged = {**((have or {}).get("cors") or {}), **declared}
    return {_CORS[key]: value for key, value in merged.items() if value not in (None, [])}


def create(clients, want: dict) -> None:
    kwargs = {"FunctionName": want["name"], "AuthType": want["auth_type"]}
    if want.get("invoke_mode"):
        kwargs["InvokeMode"] = want["invoke_mode"]
    if want.get("cors"):
        kwargs["Cors"] = _cors(want, None)
    clients.awslambda.create_function_url_config(**kwargs)


def update(clients, want: dict, have: dict, paths) -> None:
    kwargs = {"FunctionName": want["name"], "AuthType": want["auth_type"]}
    if want.get("invoke_mode"):
        kwargs["InvokeMode"] = want["invoke_mode"]
    if any(p.startswith("cors.") for p in paths):
        kwargs["Cors"] = _cors(want, have)
    clients.awslambda.update_function_url_config(**kwargs)


def delete(clients, have: dict) -> None:
    clients.awslambda.delete_function_url_config(FunctionName=have["name"])


# The interface's optional members this kind has no use for (kinds.Kind).
CREATE_CALL_FIELDS: tuple[str, ...] = ()
CREATE_ON_CHANGE = False
REPLACE_ON_CHANGE = False
resolve = keep_desired
note = no_note
