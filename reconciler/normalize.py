"""Make live and desired comparable: policy documents, tags and ownership.

A perpetual diff is a bug here, never something to special-case in the planner. Policy
documents compare semantically, as amazon.aws's compare_policies does: statement order,
a string versus a one-element list, action case and the Version default do not matter.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from reconciler.checks import DERIVED_ENV_KEYS
from reconciler.reserved import STACK_TAG

# IAM's own default when a document leaves Version out.
DEFAULT_POLICY_VERSION = "2008-10-17"
_LIST_KEYS = ("Action", "NotAction", "Resource", "NotResource")
_SECRET = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY|AUTH|DSN", re.I)
# S3_DB_KEY names an object key, not a secret; other *_KEY names are treated as secret.
_NOT_SECRET = DERIVED_ENV_KEYS


def looks_secret(key: str, value: Any = None) -> bool:
    """Whether a variable (an environment variable, a build argument) is named like a secret,
    so that its value is never shown."""
    if key in _NOT_SECRET:
        return False
    return bool(_SECRET.search(key) or key.upper().endswith("_KEY"))


def canonical_policy(document: Mapping | str | None) -> dict | None:
    """A policy document in one canonical shape (lists sorted, strings as one-element lists,
    Version filled in), so the plan shows only differences of meaning."""
    if document is None:
        return None
    parsed: Mapping = json.loads(document) if isinstance(document, str) else document
    statements = parsed.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    canonical = [_canonical_statement(s) for s in statements]
    canonical.sort(key=lambda s: json.dumps(s, sort_keys=True))
    out = {"Version": parsed.get("Version", DEFAULT_POLICY_VERSION), "Statement": canonical}
    if parsed.get("Id"):
        out["Id"] = parsed["Id"]
    return out


def policy_identity(document: Mapping | str | None) -> dict | None:
    """What two policies must share to be the same grant: the canonical shape with action
    names lowercased, since IAM matches actions case-insensitively (resources it does not),
    and without Sids, which label statements but grant nothing."""
    canonical = canonical_policy(document)
    if canonical is None:
        return None
    for statement in canonical["Statement"]:
        statement.pop("Sid", None)
        for key in ("Action", "NotAction"):
            if key in statement:
                statement[key] = sorted({a.lower() for a in statement[key]})
    canonical["Statement"].sort(key=lambda s: json.dumps(s, sort_keys=True))
    return canonical


def _canonical_statement(statement: Mapping) -> dict:
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in _LIST_KEYS:
            out[key] = sorted(set(_as_list(value)))
        elif key in ("Principal", "NotPrincipal"):
            out[key] = _canonical_principal(value)
        elif key == "Condition":
            out[key] = {
                op: {ck: sorted({_condition_value(v) for v in _as_list(cv)}) for ck, cv in block.items()}
                for op, block in value.items()
            }
        elif key == "Sid" and not value:
            continue
        else:
            out[key] = value
    return out


def _condition_value(value: Any) -> str:
    # IAM compares condition values as strings: true and "true" are the same value.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _canonical_principal(value: Any) -> Any:
    # "*" and {"AWS": "*"} mean the same principal.
    if value == "*":
        return {"AWS": ["*"]}
    return {k: sorted(set(_as_list(v))) for k, v in value.items()}


def _as_list(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def canonical_lifecycle_policy(document: Mapping | str | None) -> dict | None:
    """An ECR lifecycle policy in one shape (rules in priority order, tag lists sorted), so
    JSON formatting and key order never show as drift; ECR returns the text as it was put."""
    if document is None:
        return None
    parsed: Mapping = json.loads(document) if isinstance(document, str) else document
    rules = []
    for rule in parsed.get("rules", []):
        rule = json.loads(json.dumps(rule))
        selection = rule.get("selection", {})
        for key in ("tagPrefixList", "tagPatternList"):
            if key in selection:
                selection[key] = sorted(selection[key])
        rules.append(rule)
    return {"rules": sorted(rules, key=lambda rule: rule.get("rulePriority", 0))}


def tags_from_aws(tag_list: Iterable[Mapping] | None, *, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """AWS tag lists as a plain dict; AWS's own `aws:` tags are not ours to manage."""
    return {t[key]: t[value] for t in tag_list or () if not t[key].startswith("aws:")}


def tags_to_aws(tags: Mapping[str, str], *, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def changed_tags(want: Mapping[str, str], paths: Iterable[str]) -> dict[str, str]:
    """The tags a plan's `tags.<key>` paths name, at the values canvas.yaml wants, in key order:
    what a kind whose tagging call adds and overwrites keys (not the whole set) sends."""
    keys = sorted(p.split(".", 1)[1] for p in paths if p.startswith("tags."))
    return {k: want[k] for k in keys}


def whole_tag_set(want: Mapping[str, str], have: Mapping[str, str], paths: Iterable[str]) -> dict[str, str] | None:
    """For a kind whose tagging call replaces the whole set (S3): canvas.yaml's tags over the live
    ones, which it does not manage and so keeps, or None when no tag is to change."""
    if not any(p == "tags" or p.startswith("tags.") for p in paths):
        return None
    return {**have, **want}


def desired_tags(spec) -> dict[str, str]:
    """The user's tags plus the ownership tag, which always wins."""
    return {**(spec.tags or {}), STACK_TAG: spec.stack}


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
