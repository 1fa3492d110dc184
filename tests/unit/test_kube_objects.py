"""Nested fields of API objects read defensively (exporter/kube/objects.py): a field of another
type than the API documents reads as an empty object or array."""

from __future__ import annotations

import pytest

from exporter.discovery.provider import trim_node
from exporter.kube.objects import as_dict, as_list


def test_an_object_is_read_as_it_is() -> None:
    obj = {"name": "etcd-main-0", "labels": {"app": "etcd"}}
    assert as_dict(obj) is obj


@pytest.mark.parametrize("value", [None, "metadata", 3, ["name"], True])
def test_anything_else_reads_as_an_empty_object(value: object) -> None:
    assert as_dict(value) == {}


def test_an_array_is_read_as_it_is() -> None:
    items = [{"name": "etcd"}]
    assert as_list(items) is items


@pytest.mark.parametrize("value", [None, "containers", 3, {"name": "etcd"}, True])
def test_anything_else_reads_as_an_empty_array(value: object) -> None:
    assert as_list(value) == []


def test_a_malformed_object_costs_its_fields_not_the_object() -> None:
    node = trim_node({"metadata": ["n-1"], "spec": {"providerID": "gce://p/z/n-1"}})
    assert (node.name, node.provider_id) == ("", "gce://p/z/n-1")
