"""An attribute change carries its field and key from diff() to the record's classification,
so nothing downstream parses them back out of the dotted path (a tag key may hold dots)."""
from reconciler import record
from reconciler.diff import Field, diff
from reconciler.plan import Action, Baseline, Cause, ResourceChange

FIELDS = (Field("memory"), Field("tags", per_key=True))


class Kind:
    FIELDS = FIELDS


def test_diff_names_the_field_and_the_whole_key():
    changes = diff(FIELDS, {"memory": 512, "tags": {"app.version": "2"}}, {"memory": 256, "tags": {}})
    assert [(c.path, c.field_path, c.key) for c in changes] == [
        ("memory", "memory", None), ("tags.app.version", "tags", "app.version")]


def test_the_record_classifies_by_the_carried_field_and_key_not_the_path():
    want = {"name": "f", "memory": 512, "tags": {"app.version": "2"}}
    have = {"name": "f", "memory": 256, "tags": {"app.version": "1"}}
    then = {"name": "f", "memory": 256, "tags": {"app.version": "2"}}  # the last apply set version 2
    attributes = tuple(diff(FIELDS, want, have))
    change = ResourceChange(type="x", name="f", action=Action.UPDATE, attributes=attributes, desired=want, live=have)
    baseline = Baseline(location="s3://b/k", record={"desired": {"x.f": then}})
    classified = {a.path: a.cause for a in record.with_causes(Kind, change, baseline).attributes}
    # memory: canvas.yaml moved on from what was applied; the tag: someone changed it in AWS.
    assert classified == {"memory": Cause.SPEC, "tags.app.version": Cause.DRIFT}
    # A change whose path says nothing the record could parse is still classified by what it carries.
    renamed = tuple(a.__class__(path=f"shown-as-{i}", before=a.before, after=a.after, field_path=a.field_path,
                                key=a.key) for i, a in enumerate(attributes))
    change = ResourceChange(type="x", name="f", action=Action.UPDATE, attributes=renamed, desired=want, live=have)
    assert [a.cause for a in record.with_causes(Kind, change, baseline).attributes] == [Cause.SPEC, Cause.DRIFT]
