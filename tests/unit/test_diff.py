"""diff: desired vs live, attribute by attribute, from a table of fields."""
import pytest

from reconciler.diff import Field, diff, lookup
from reconciler.normalize import policy_identity
from reconciler.plan import SENSITIVE, AttributeChange


def changes(fields, desired, live):
    return [(c.path, c.before, c.after) for c in diff(tuple(fields), desired, live)]


def test_equal_values_are_no_change():
    assert changes([Field("encryption")], {"encryption": "AES256"}, {"encryption": "AES256"}) == []


def test_a_differing_value_is_one_change_with_before_and_after():
    assert changes([Field("encryption")], {"encryption": "AES256"}, {"encryption": "aws:kms"}) == [
        ("encryption", "aws:kms", "AES256")]


def test_string_case_matters():
    assert changes([Field("encryption")], {"encryption": "AES256"}, {"encryption": "aes256"}) != []


@pytest.mark.parametrize("desired", [{"scan_on_push": None}, {}], ids=["none", "absent"])
def test_unset_in_canvas_yaml_is_unmanaged(desired):
    assert changes([Field("scan_on_push")], desired, {"scan_on_push": True}) == []


def test_unset_is_skipped_even_when_creating():
    fields = [Field("scan_on_push"), Field("tag_mutability")]
    assert changes(fields, {"scan_on_push": True, "tag_mutability": None}, None) == [("scan_on_push", None, True)]


def test_everything_set_is_a_change_when_live_is_absent():
    fields = [Field("versioning", compare_as=lambda v: v == "Enabled"), Field("tags", per_key=True)]
    assert changes(fields, {"versioning": "Suspended", "tags": {"b": "2", "a": "1"}}, None) == [
        ("versioning", None, "Suspended"), ("tags.a", None, "1"), ("tags.b", None, "2")]


def test_false_is_a_value_not_unset():
    assert changes([Field("block_public_access")], {"block_public_access": False},
                   {"block_public_access": True}) == [("block_public_access", True, False)]


def test_unordered_list_ignores_order_but_not_content():
    field = Field("managed_policies", unordered=True)
    assert changes([field], {"managed_policies": ["a", "b"]}, {"managed_policies": ["b", "a"]}) == []
    assert changes([field], {"managed_policies": ["a", "b"]}, {"managed_policies": ["b", "c"]}) == [
        ("managed_policies", ["b", "c"], ["a", "b"])]


def test_ordered_list_order_matters():
    assert changes([Field("architectures")], {"architectures": ["a", "b"]}, {"architectures": ["b", "a"]}) != []


def test_compare_as_projects_both_sides():
    field = Field("versioning", compare_as=lambda v: v == "Enabled")
    assert changes([field], {"versioning": "Suspended"}, {"versioning": "Disabled"}) == []
    assert changes([field], {"versioning": "Enabled"}, {"versioning": "Suspended"}) == [
        ("versioning", "Suspended", "Enabled")]


def test_per_key_reports_each_key_by_its_dotted_path():
    field = Field("tags", per_key=True)
    desired = {"tags": {"canvas:stack": "code-canvas-astro", "team": "canvas", "env": "prod"}}
    live = {"tags": {"team": "platform", "env": "prod", "owner": "alice"}}
    assert changes([field], desired, live) == [
        ("tags.canvas:stack", None, "code-canvas-astro"), ("tags.team", "platform", "canvas")]


def test_per_key_with_purge_reports_undeclared_live_keys_as_removals():
    field = Field("inline_policies", per_key=True, purge=True)
    desired = {"inline_policies": {"S3DatabaseAccessPolicy": "p"}}
    live = {"inline_policies": {"S3DatabaseAccessPolicy": "p", "Backdoor": "q", "Another": "r"}}
    assert changes([field], desired, live) == [
        ("inline_policies.Another", "r", None), ("inline_policies.Backdoor", "q", None)]


def test_per_key_compares_each_value_with_compare_as():
    field = Field("inline_policies", per_key=True, purge=True, compare_as=policy_identity)
    desired = {"inline_policies": {"db": {"Version": "2012-10-17", "Statement": [
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}]}}}
    same = {"inline_policies": {"db": {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": ["S3:ListBucket"], "Resource": ["arn:aws:s3:::b"]}}}}
    wider = {"inline_policies": {"db": {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}}}}
    assert changes([field], desired, same) == []
    assert [path for path, _, _ in changes([field], desired, wider)] == ["inline_policies.db"]


def test_per_key_when_live_has_no_mapping_at_all():
    assert changes([Field("tags", per_key=True)], {"tags": {"a": "1"}}, {"tags": None}) == [("tags.a", None, "1")]


def test_dotted_field_paths_look_inside_documents():
    desired = {"url": {"cors": {"max_age": 0}}}
    assert changes([Field("url.cors.max_age")], desired, {"url": {"cors": {"max_age": 86400}}}) == [
        ("url.cors.max_age", 86400, 0)]
    assert lookup({"url": "not-a-mapping"}, "url.cors") is None


def test_fields_come_out_in_table_order():
    fields = [Field("b"), Field("a")]
    assert [p for p, _, _ in changes(fields, {"a": 1, "b": 1}, {"a": 2, "b": 2})] == ["b", "a"]


def test_sensitive_values_are_marked_and_never_shown():
    field = Field("environment", per_key=True, sensitive=lambda key, _: "SECRET" in key)
    [secret, port] = diff((field,), {"environment": {"API_SECRET": "new", "PORT": "8080"}},
                          {"environment": {"API_SECRET": "old", "PORT": "80"}})
    assert (secret.path, secret.sensitive, secret.shown()) == ("environment.API_SECRET", True, (SENSITIVE, SENSITIVE))
    assert (port.sensitive, port.shown()) == (False, ("80", "8080"))
    assert AttributeChange("x", None, "s", sensitive=True).shown() == (None, SENSITIVE)


def test_identical_values_are_equal_without_deepdiff_and_near_misses_still_go_to_it():
    import subprocess
    import sys

    code = ("import sys; from reconciler.diff import equal; "
            "assert equal({'a': [1, {'b': 'x'}]}, {'a': [1, {'b': 'x'}]}, unordered=True); "
            "assert equal(['p', 'q'], ['p', 'q']); "
            "print('deepdiff' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
    from reconciler.diff import equal
    assert not equal(1, 1.0) and not equal(True, 1) and not equal({"a": 1}, {"a": 1.0})
    assert equal(["b", "a"], ["a", "b"], unordered=True) and not equal(["b", "a"], ["a", "b"])
    assert not equal(float("nan"), 0.0)
