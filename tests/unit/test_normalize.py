"""normalize: policy documents compared by meaning, tags made comparable."""
import json

import pytest

from reconciler.normalize import (
    DEFAULT_POLICY_VERSION,
    STACK_TAG,
    canonical_policy,
    desired_tags,
    partition,
    policy_identity,
    tags_from_aws,
    tags_to_aws,
)

BUCKET = "arn:aws:s3:::code-canvas-astro-db"
OBJECT = f"{BUCKET}/database/taskManagement.db"


def policy(*statements, version="2012-10-17"):
    document = {"Statement": list(statements)}
    if version:
        document["Version"] = version
    return document


def allow(action, resource=OBJECT, **more):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


READ_WRITE = allow(["s3:GetObject", "s3:PutObject"])
LIST = allow("s3:ListBucket", BUCKET)
PUBLIC_INVOKE = {"Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunctionUrl", "Resource": "*"}
SECURE_ONLY = {"Bool": {"aws:SecureTransport": "true"}}

SAME = [
    pytest.param(policy(READ_WRITE, LIST), policy(LIST, READ_WRITE), id="statement-order"),
    pytest.param(policy(LIST), policy(allow(["s3:ListBucket"], [BUCKET])), id="string-vs-one-element-list"),
    pytest.param(policy(allow(["s3:PutObject", "s3:GetObject"])), policy(READ_WRITE), id="list-order"),
    pytest.param(policy(allow(["s3:GetObject", "s3:GetObject"])), policy(allow("s3:GetObject")),
                 id="duplicate-actions"),
    pytest.param({"Version": "2012-10-17", "Statement": LIST}, policy(LIST), id="statement-object-vs-list"),
    pytest.param(policy(LIST, version=None), policy(LIST, version=DEFAULT_POLICY_VERSION), id="version-default"),
    pytest.param(policy(allow(["S3:GetObject", "s3:putobject"])), policy(READ_WRITE), id="action-case"),
    pytest.param(policy(PUBLIC_INVOKE), policy({**PUBLIC_INVOKE, "Principal": {"AWS": "*"}}),
                 id="principal-star-vs-aws-star"),
    pytest.param(policy({**PUBLIC_INVOKE, "Principal": {"AWS": "*"}}),
                 policy({**PUBLIC_INVOKE, "Principal": {"AWS": ["*"]}}), id="principal-string-vs-list"),
    pytest.param(policy(allow("s3:GetObject", Condition=SECURE_ONLY)),
                 policy(allow("s3:GetObject", Condition={"Bool": {"aws:SecureTransport": ["true"]}})),
                 id="condition-string-vs-list"),
    pytest.param(policy(allow("s3:GetObject", Condition=SECURE_ONLY)),
                 policy(allow("s3:GetObject", Condition={"Bool": {"aws:SecureTransport": True}})),
                 id="condition-bool-vs-string"),
    pytest.param(policy(allow("s3:GetObject", Condition={"StringEquals": {"aws:SourceAccount": ["1", "2"]}})),
                 policy(allow("s3:GetObject", Condition={"StringEquals": {"aws:SourceAccount": ["2", "1"]}})),
                 id="condition-value-order"),
    pytest.param(policy(allow("s3:GetObject", Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": 3600}})),
                 policy(allow("s3:GetObject", Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}})),
                 id="condition-number-vs-string"),
    pytest.param(policy({**LIST, "Sid": "ListDatabaseBucket"}), policy(LIST), id="sid-vs-none"),
    pytest.param(policy({**LIST, "Sid": ""}), policy(LIST), id="empty-sid"),
    pytest.param(json.dumps(policy(READ_WRITE, LIST)), policy(LIST, READ_WRITE), id="json-text-vs-dict"),
]

DIFFERENT = [
    pytest.param(policy(LIST, version=None), policy(LIST), id="no-version-is-not-2012-10-17"),
    pytest.param(policy(READ_WRITE), policy(allow(["s3:GetObject", "s3:PutObject"], OBJECT.upper())),
                 id="resource-case-matters"),
    pytest.param(policy(READ_WRITE), policy({**READ_WRITE, "Effect": "Deny"}), id="effect"),
    pytest.param(policy(READ_WRITE), policy(allow(["s3:GetObject", "s3:PutObject", "s3:HeadObject"])),
                 id="extra-action"),
    pytest.param(policy(READ_WRITE), policy(allow(["s3:GetObject", "s3:PutObject"], f"{BUCKET}/*")),
                 id="wider-resource"),
    pytest.param(policy(READ_WRITE, LIST), policy(READ_WRITE), id="missing-statement"),
    pytest.param(policy(allow("s3:GetObject", Condition=SECURE_ONLY)),
                 policy(allow("s3:GetObject", Condition={"Bool": {"aws:SecureTransport": "false"}})),
                 id="condition-value"),
    pytest.param(policy(allow("s3:GetObject", Condition=SECURE_ONLY)), policy(allow("s3:GetObject")),
                 id="condition-dropped"),
    pytest.param(policy(PUBLIC_INVOKE), policy({**PUBLIC_INVOKE, "Principal": {"AWS": "123456789012"}}),
                 id="principal"),
    pytest.param(policy(allow("s3:GetObject")), policy({"Effect": "Allow", "NotAction": "s3:GetObject",
                                                         "Resource": OBJECT}), id="action-vs-notaction"),
]


@pytest.mark.parametrize("a, b", SAME)
def test_policies_with_the_same_meaning_have_the_same_identity(a, b):
    assert policy_identity(a) == policy_identity(b)


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_policies_that_grant_differently_have_different_identities(a, b):
    assert policy_identity(a) != policy_identity(b)


def test_canonical_shape_keeps_what_a_reader_wants_to_see():
    """The shape shown in a plan: lists sorted, Version filled in, Sids and action case kept."""
    written = {"Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "S3:GetObject", "Resource": OBJECT},
                             allow(["s3:PutObject", "s3:GetObject"], BUCKET)]}

    assert canonical_policy(written) == {
        "Version": DEFAULT_POLICY_VERSION,
        "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": ["S3:GetObject"], "Resource": [OBJECT]},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": [BUCKET]},
        ],
    }


@pytest.mark.parametrize("document", [p.values[0] for p in SAME], ids=[p.id for p in SAME])
def test_canonical_shape_is_stable(document):
    once = canonical_policy(document)
    assert canonical_policy(once) == once
    assert policy_identity(once) == policy_identity(document)


def test_identity_does_not_change_the_document_it_was_given():
    document = policy({**READ_WRITE, "Sid": "ReadWrite"})
    before = json.dumps(document, sort_keys=True)
    policy_identity(document)
    assert json.dumps(document, sort_keys=True) == before


def test_absent_policy_stays_absent():
    assert canonical_policy(None) is None
    assert policy_identity(None) is None


def test_policy_id_is_kept():
    assert canonical_policy({**policy(LIST), "Id": "db"})["Id"] == "db"
    assert policy_identity({**policy(LIST), "Id": "db"}) != policy_identity(policy(LIST))


def test_aws_own_tags_are_ignored():
    tag_list = [{"Key": "team", "Value": "canvas"}, {"Key": "aws:cloudformation:stack-name", "Value": "old"},
                {"Key": STACK_TAG, "Value": "code-canvas-astro"}]
    assert tags_from_aws(tag_list) == {"team": "canvas", STACK_TAG: "code-canvas-astro"}


def test_tags_from_aws_with_other_key_names_and_none():
    assert tags_from_aws([{"key": "team", "value": "canvas"}], key="key", value="value") == {"team": "canvas"}
    assert tags_from_aws(None) == {}


def test_tag_order_is_irrelevant():
    a = [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}]
    assert tags_from_aws(a) == tags_from_aws(list(reversed(a)))
    assert tags_to_aws({"b": "2", "a": "1"}) == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]


class _Spec:
    stack = "code-canvas-astro"

    def __init__(self, tags):
        self.tags = tags


def test_ownership_tag_is_always_the_stack():
    assert desired_tags(_Spec({"team": "canvas", STACK_TAG: "someone-else"})) == {
        "team": "canvas", STACK_TAG: "code-canvas-astro"}
    assert desired_tags(_Spec(None)) == {STACK_TAG: "code-canvas-astro"}


@pytest.mark.parametrize("region, expected", [
    ("us-west-2", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
def test_partition(region, expected):
    assert partition(region) == expected
