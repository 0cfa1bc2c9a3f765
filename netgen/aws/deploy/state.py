"""What is deployed: every stack of an account and region read with one paginated DescribeStacks, and the
digest that tells an unchanged stack from a changed one without a change set.

A stack netgen deployed carries the tag `netgen:digest`: the SHA-256 of the template it was deployed from
(generated/, as written) and of its parameter values. A stack whose digest is what this run would deploy,
in a settled status, is skipped (`unchanged`); a new peering id in a parameter changes the digest of every
stack that takes it. The change set puts the digest on; a stack whose check against EC2 (settle) then fails
gets UNSETTLED instead, so that the next run does not skip it. (A run killed between the two leaves the digest:
`netgen deploy --full` then checks every stack.)
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from netgen.aws.generated import STACK_PREFIX, tag_value

DIGEST_TAG = "netgen:digest"
UNSETTLED = "unsettled"  # the digest of a stack whose check against EC2 failed: the next run deploys it again
OK_FINAL = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def digest(template: dict, parameters: dict[str, str]) -> str:
    body = json.dumps({"template": template, "parameters": parameters}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class LiveStack:
    name: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def digest(self) -> str | None:
        return tag_value(self.raw, DIGEST_TAG)

    def is_current(self, wanted_digest: str) -> bool:
        return self.status in OK_FINAL and self.digest == wanted_digest


def live_stack(described: dict) -> LiveStack:
    return LiveStack(described["StackName"], described["StackStatus"],
                     {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", []) or []}, described)


class LiveStacks:
    """The live stacks of each (account, region), read once per run on first use (one paginated
    DescribeStacks per place), then kept up to date by deploy for the stacks it changes."""

    def __init__(self, clients: Any):
        self.clients = clients
        self._places: dict[tuple[str, str], dict[str, LiveStack]] = {}
        self._lock = threading.Lock()
        self._place_locks: dict[tuple[str, str], threading.Lock] = {}

    def place(self, account: str, region: str) -> dict[str, LiveStack]:
        key = (account, region)
        with self._lock:
            lock = self._place_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._places:
                cfn = self.clients.cloudformation(account, region)
                stacks = {}
                for page in cfn.get_paginator("describe_stacks").paginate():
                    for described in page.get("Stacks", []):
                        if described.get("StackStatus") != "DELETE_COMPLETE":
                            stacks[described["StackName"]] = live_stack(described)
                self._places[key] = stacks
            return self._places[key]

    def get(self, account: str, region: str, name: str) -> LiveStack | None:
        return self.place(account, region).get(name)

    def netgen_names(self, account: str, region: str) -> list[str]:
        return sorted(n for n in self.place(account, region) if n.startswith(STACK_PREFIX))

    def update(self, account: str, region: str, name: str, described: dict | None) -> None:
        stacks = self.place(account, region)
        with self._lock:
            if described is None:
                stacks.pop(name, None)
            else:
                stacks[name] = live_stack(described)
