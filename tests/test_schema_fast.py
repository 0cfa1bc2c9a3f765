"""The fast schema check (fastjsonschema) must never call valid what jsonschema calls invalid.

netgen trusts only its 'valid' answer and sends everything else to jsonschema for located errors, so the one
disagreement that matters is fast-valid but jsonschema-invalid. Mutated example documents probe it.
"""

import copy

from conftest import EXAMPLE_SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netgen.diagnostics import Reporter
from netgen.loader import load_tree
from netgen.schema import _const_as_enum, _fast_check, _validator

DOCS = [d.data for d in load_tree(EXAMPLE_SPECS, Reporter())]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                    st.sampled_from(["10.0.0.0/8", "sg-0123456789abcdef0", "payments", "TCP", "open", "2027-01-01",
                                     "Bad_Name", "a" * 70, "vpc-1234", "default-deny", "load-balancer"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


def fast_valid(doc) -> bool:
    try:
        _fast_check(doc["kind"])(doc)
        return True
    except Exception:  # noqa: BLE001 - the netgen code treats any failure as 'not known valid'
        return False


def full_valid(doc) -> bool:
    return not list(_validator(doc["kind"]).iter_errors(doc))


def test_both_accept_every_example_document():
    assert DOCS and all(fast_valid(d) and full_valid(d) for d in DOCS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_valid_implies_jsonschema_valid(data):
    doc = copy.deepcopy(data.draw(st.sampled_from(DOCS)))
    for _ in range(data.draw(st.integers(1, 3))):
        candidates = [p for p in paths(doc) if len(p) >= 2 or p[:1] == ("spec",)]
        if not candidates:
            break
        path = data.draw(st.sampled_from(candidates))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = data.draw(values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(values)
    kind = doc["kind"]
    if fast_valid(doc):
        assert full_valid(doc), (kind, doc)


def test_const_becomes_enum_only_where_it_is_a_keyword():
    schema = {"properties": {"const": True, "kind": {"const": "Vpc"}}, "default": {"const": 1},
              "allOf": [{"const": 3}], "enum": [{"const": 2}]}
    assert _const_as_enum(schema) == {"properties": {"const": True, "kind": {"enum": ["Vpc"]}},
                                      "default": {"const": 1}, "allOf": [{"enum": [3]}], "enum": [{"const": 2}]}


def test_exposure_rules_chosen_by_const_type_hold_in_the_fast_check():  # const, given to fastjsonschema as enum
    services = [d for d in DOCS if d["kind"] == "Service"]
    by_type = {d["spec"]["exposure"]["type"]: d for d in services}
    assert {"pod-ip", "load-balancer"} <= set(by_type)
    pod_ip, balanced = copy.deepcopy(by_type["pod-ip"]), copy.deepcopy(by_type["load-balancer"])
    assert fast_valid(pod_ip) and fast_valid(balanced)
    pod_ip["spec"]["exposure"]["subnetCidrs"] = ["10.0.0.0/24"]  # only a load balancer has subnets
    del balanced["spec"]["exposure"]["subnetCidrs"]  # which a load balancer must have
    assert not fast_valid(pod_ip) and not full_valid(pod_ip)
    assert not fast_valid(balanced) and not full_valid(balanced)
