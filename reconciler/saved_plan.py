"""Saved plans: `plan --out FILE` writes one, `apply FILE` applies exactly it, `show FILE` renders it.

A saved plan is what a reviewer approves. It holds the plan as `plan --json` prints it (secret
values masked), and for checking it later: the tool version, stack, region and account, the
canvas.yaml hash, and one fingerprint per pending change — a hash of its address, action and
every attribute's live ("before") and declared ("after") value, so a secret is in the file only
inside a hash, as in the record of the last apply. Image digests and content hashes are in the
fingerprints too (the function's image_digest, the image's content tag), and listed in clear.

`apply FILE` plans again and compares fingerprints, before the lock and again under it
(safe_apply.locked_apply): any difference is a stale plan, exit 1, and no write. There is no
partial apply of a saved plan: applying "what is still true" of it would be a plan nobody saw.
"""
from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path

from reconciler import __version__
from reconciler.errors import ReconcileError
from reconciler.plan import Action, AttributeChange, Baseline, Cause, Plan, ResourceChange
from reconciler.safe_apply import StalePlan, differences, fingerprints, plan_sha256

KIND = "canvas-reconcile saved plan"
SAVED_PLAN_VERSION = 1
MAX_BYTES = 16 * 1024 * 1024  # a plan of eight resources is a few KB; anything near this is not ours


class SavedPlanError(ReconcileError):
    """The file is not a saved plan this tool can apply; the message says why and what to do."""


def document(plan: Plan, *, spec, now: datetime.datetime | None = None) -> dict:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {
        "kind": KIND,
        "saved_plan_version": SAVED_PLAN_VERSION,
        "tool_version": __version__,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stack": plan.stack,
        "region": plan.region,
        "account": plan.account,
        "spec": {"file": str(spec.file), "sha256": spec.sha256},
        "plan_sha256": plan_sha256(plan),
        "fingerprints": fingerprints(plan),
        "images": _images(plan),
        "plan": plan.to_json(),
    }


def _images(plan: Plan) -> list[dict]:
    """The image each container_image resolves to, as the plan saw it: for a reviewer to read."""
    images = []
    for change in plan.changes:
        if change.type == "container_image":
            want, have = change.desired or {}, change.live or {}
            images.append({"address": change.address, "tag": want.get("tag"), "digest": have.get("digest"),
                           "content_hash": want.get("content_hash"), "content_tag": want.get("content_tag")})
    return images


def write(path: str, saved: dict) -> None:
    """Whole or not at all: a reviewer never approves half a file."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise SavedPlanError(f"cannot write the plan to {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as out:
        json.dump(saved, out, indent=2)
        out.write("\n")
    os.replace(tmp, target)


def load(path: str) -> dict:
    """The saved plan in `path`, checked to be one this version of the tool made."""
    try:
        with open(path, "rb") as source:
            raw = source.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SavedPlanError(f"cannot read the saved plan {path}: {exc.strerror}") from exc
    if len(raw) > MAX_BYTES:
        raise SavedPlanError(f"{path} is not a saved plan (over {MAX_BYTES:,} bytes); "
                             "make one with `reconcile plan --out FILE`")
    try:
        saved = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SavedPlanError(f"{path} is not a saved plan (not JSON: {exc}); "
                             "make one with `reconcile plan --out FILE`") from exc
    if not isinstance(saved, dict) or saved.get("kind") != KIND:
        raise SavedPlanError(f"{path} is not a saved plan (no \"kind\": \"{KIND}\"); "
                             "make one with `reconcile plan --out FILE`")
    if saved.get("saved_plan_version") != SAVED_PLAN_VERSION or saved.get("tool_version") != __version__:
        raise SavedPlanError(f"{path} was made by reconcile {saved.get('tool_version')} (saved plan format "
                             f"{saved.get('saved_plan_version')}); this is reconcile {__version__}: a plan is "
                             "applied by the version that made it — make the plan again with this one")
    for key, kind in (("stack", str), ("region", str), ("account", str), ("spec", dict), ("fingerprints", dict),
                      ("plan", dict)):
        if not isinstance(saved.get(key), kind):
            raise SavedPlanError(f"{path} is not a complete saved plan ({key!r} is missing or not a "
                                 f"{kind.__name__}); make the plan again")
    return saved


def check_matches(saved: dict, *, path: str, spec, region: str, account: str) -> None:
    """The plan is for this stack, region, account and canvas.yaml; else nothing is applied."""
    for what, planned, now in (("stack", saved["stack"], spec.stack), ("region", saved["region"], region),
                               ("account", saved["account"], account)):
        if planned != now:
            raise SavedPlanError(f"{path} is a plan for {what} {planned!r}, but canvas.yaml and the credentials "
                                 f"in use are for {what} {now!r}; nothing was applied")
    if saved["spec"].get("sha256") != spec.sha256:
        raise StalePlan(f"stale plan: {spec.file} changed since {path} was saved (sha256 "
                        f"{str(saved['spec'].get('sha256'))[:12]}… then, {spec.sha256[:12]}… now); nothing was "
                        "applied. Make and review the plan again.")


def check_fresh(saved: dict, plan: Plan, *, path: str) -> None:
    """Planned now, the stack needs exactly the changes saved, against the same live values."""
    changed = differences(saved["fingerprints"], fingerprints(plan))
    if changed:
        raise StalePlan(f"stale plan: the stack changed after {path} was saved (another apply, or a change in "
                        "AWS); nothing was applied:\n  " + "\n  ".join(changed) +
                        "\nMake and review the plan again.")


def revive(saved: dict, *, path: str) -> Plan:
    """The saved plan as a Plan for render (values as saved: secrets already masked)."""
    try:
        return _revived(saved)
    except (KeyError, TypeError, ValueError) as exc:
        raise SavedPlanError(f"{path} is not a complete saved plan ({type(exc).__name__}: {exc}); "
                             "make the plan again") from exc


def _revived(saved: dict) -> Plan:
    body = saved["plan"]
    changes = tuple(
        ResourceChange(type=c["type"], name=c["name"], action=Action(c["action"]), note=c.get("note"),
                       attributes=tuple(AttributeChange(path=a["path"], before=a["before"], after=a["after"],
                                                        cause=Cause(a.get("cause", "spec")))
                                        for a in c.get("attributes", ())))
        for c in body.get("changes", ()))
    last = body.get("last_applied")
    baseline = Baseline(location="", record=last) if last else None
    return Plan(stack=body.get("stack", saved["stack"]), region=body.get("region", saved["region"]),
                changes=changes, baseline=baseline)


def header(saved: dict, *, path: str) -> str:
    return (f"Saved plan {path}: made {saved.get('created_at')} by reconcile {saved.get('tool_version')} "
            f"from {saved['spec'].get('file')} (sha256 {str(saved['spec'].get('sha256'))[:12]}…), "
            f"account {saved['account']}.")
