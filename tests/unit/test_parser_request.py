"""Operation and resource of a slow request (design §2 and §3 rules)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.model import Operation
from exporter.parser.request import describe, go_unquote, resource_of_key


def operation_of(prefix: str, request_text: str) -> Operation:
    return describe(prefix, request_text)[0]


def resource_of(request_text: str) -> str:
    """The resource does not depend on the prefix."""
    resources = {describe(prefix, request_text)[1] for prefix in ("", "read-only range ")}
    assert len(resources) == 1
    return resources.pop()


@pytest.mark.parametrize(
    ("key", "resource"),
    [
        ("/registry/pods/ns/name", "pods"),
        ("/registry/pods/", "pods"),
        ("/registry/pods", "pods"),
        ("/registry/deployments/shoot--a--b/kube-apiserver", "deployments"),
        ("/registry/services/specs/default/kubernetes", "services"),
        ("/registry/services/specs/", "services"),
        ("/registry/services/endpoints/default/kubernetes", "endpoints"),
        ("/registry/minions/node-1", "nodes"),
        ("/registry/druid.gardener.cloud/etcds/shoot--a--b/etcd-main", "etcds"),
        ("/registry/apiextensions.k8s.io/customresourcedefinitions/x", "customresourcedefinitions"),
        ("/registry/apps/controllerrevisions/ns/rev", "controllerrevisions"),
        ("/registry/batch/cronjobs/ns/job", "cronjobs"),
        ("/registry/autoscaling/horizontalpodautoscalers/ns/x", "horizontalpodautoscalers"),
        ("/registry/policy/poddisruptionbudgets/ns/x", "poddisruptionbudgets"),
        ("/registry/extensions/ingresses/ns/x", "ingresses"),
        ("/registry/apps", "other"),  # a group without a resource
        ("/registry/druid.gardener.cloud/", "other"),
        ("/registry/", "other"),
        ("/registry/Pods/ns/x", "other"),  # not a plain lowercase name
        ("/registry/pods\\303\\251/x", "other"),
        ("/registry/" + "a" * 64 + "/x", "other"),
        ("/registry/" + "a" * 63 + "/x", "a" * 63),
        ("/plain/key", "other"),
        ("health", "other"),
        ("", "other"),
        ("/registryx/pods/a", "other"),
    ],
)
def test_resource_of_key(key: str, resource: str) -> None:
    assert resource_of_key(key) == resource


@pytest.mark.parametrize(
    ("request_text", "resource"),
    [
        ('key:"/registry/pods/" range_end:"/registry/pods0" count_only:true ', "pods"),
        ('key:"/registry/leases" range_end:"/registry/leaset" ', "leases"),
        # a txn: its first key (the compare's)
        (
            'header:<ID:1 username:"key:\\"/registry/secrets/x\\"" > txn:<compare:<target:MOD '
            'key:"/registry/configmaps/a/b" mod_revision:1 > success:<request_put:<key:'
            '"/registry/pods/a/b" value_size:1 >> failure:<>>',
            "configmaps",
        ),
        ("header:<ID:1 > lease_grant:<ttl:5-second id:694d6d1ba410a085>", "other"),
        ("", "other"),
    ],
)
def test_resource_of_request(request_text: str, resource: str) -> None:
    assert resource_of(request_text) == resource


@pytest.mark.parametrize(
    ("prefix", "request_text", "operation"),
    [
        ("read-only range ", 'key:"/a" ', Operation.RANGE),
        ("read-only range ", "", Operation.RANGE),
        ("read-only range ", 'compare:<key:"/a" > success:<> failure:<> ', Operation.TXN),
        ("read-only range ", 'success:<request_range:<key:"/a" > > failure:<> ', Operation.TXN),
        ("read-only range ", 'failure:<request_range:<key:"/a" > > ', Operation.TXN),
        ("read-only txn ", 'success:<request_range:<key:"/a" > > ', Operation.TXN),
        ("", 'header:<ID:1 > put:<key:"/a" value_size:1 >', Operation.PUT),
        ("", 'header:<ID:1 username:"x>y" auth_revision:1 > put:<key:"/a" >', Operation.PUT),
        ("", "header:<ID:1 > txn:<compare:<> >", Operation.TXN),
        ("", 'header:<ID:1 > delete_range:<key:"/a" > ', Operation.DELETE_RANGE),
        ("", "header:<ID:1 > lease_grant:<ttl:5-second id:1>", Operation.LEASE_GRANT),
        ("", "header:<ID:1 > lease_revoke:<id:1>", Operation.LEASE_REVOKE),
        ("", "header:<ID:1 > lease_checkpoint:<checkpoints:<> >", Operation.LEASE_CHECKPOINT),
        ("", "header:<ID:1 > compaction:<revision:493 > ", Operation.COMPACTION),
        ("", "header:<ID:1 > authenticate:<name:root simple_token:x>", Operation.AUTHENTICATE),
        ("", 'header:<ID:1 > cluster_version_set:<ver:"3.5.0" > ', Operation.CLUSTER),
        ("", "header:<ID:1 > cluster_member_attr_set:<member_ID:1 > ", Operation.CLUSTER),
        ("", "header:<ID:1 > downgrade_info_set:<enabled:true > ", Operation.CLUSTER),
        ("", 'ID:1 Method:"PUT" Path:"/0/members/d045a76dbb9c027/attributes" ', Operation.CLUSTER),
        ("", 'ID:1 Method:"PUT" Path:"/0/version" Val:"3.4.0" ', Operation.CLUSTER),
        ("", 'header:<ID:1 > v2:<ID:1 Method:"PUT" Path:"/0/version" > ', Operation.CLUSTER),
        ("", 'ID:1 Method:"PUT" Path:"/0/versionx" ', Operation.OTHER),
        ("", 'ID:1 Method:"PUT" Path:"/1/keys/a" ', Operation.OTHER),
        ("", "header:<ID:1 > alarm:<action:GET > ", Operation.OTHER),
        ("", 'header:<ID:1 > range:<key:"/a" > ', Operation.RANGE),
        ("", "", Operation.OTHER),
        ("", "header:<ID:1", Operation.OTHER),
    ],
)
def test_operation_of(prefix: str, request_text: str, operation: Operation) -> None:
    assert operation_of(prefix, request_text) is operation


@pytest.mark.parametrize(
    ("quoted", "plain"),
    [
        ('key:\\"/registry/pods/a\\" ', 'key:"/registry/pods/a" '),
        ("a\\\\b", "a\\b"),
        ("tab\\there\\n", "tab\there\n"),
        ("\\x41\\u00e9\\U0001F600", "Aé😀"),
        ("\\xff", "\ufffd"),  # a lone byte is no text
        ("\\101", "A"),
        ("\\q", "q"),
        ("no escapes", "no escapes"),
        ("trailing\\", "trailing\\"),
    ],
)
def test_go_unquote(quoted: str, plain: str) -> None:
    assert go_unquote(quoted) == plain


@given(st.text(max_size=200))
def test_go_unquote_round_trip_of_go_style_quoting(text: str) -> None:
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    assert go_unquote(quoted) == text


@given(st.text(max_size=300), st.sampled_from(["", "read-only range ", "read-only txn "]))
def test_never_raise_and_labels_stay_bounded(request_text: str, prefix: str) -> None:
    assert isinstance(operation_of(prefix, request_text), Operation)
    resource = resource_of(request_text)
    assert resource == "other" or re.fullmatch(r"[a-z0-9.-]{1,63}", resource)
