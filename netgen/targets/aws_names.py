"""Names in the AWS target: logical ids that hash what a resource is, rule descriptions, and the stack each
resource lives in (StackKey: per account and region a network stack, and a stack per security group)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from netgen.model import SecurityGroup, TransitGateway, Vpc

_DESCRIPTION_OK = re.compile(r"[^a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]")


@lru_cache(maxsize=65536)
def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def logical_id(prefix: str, readable: str, *identity: object) -> str:
    digest = hashlib.sha256("|".join(map(str, identity)).encode()).hexdigest()[:10]
    return f"{prefix}{camel(readable)[:120]}{digest}"


@lru_cache(maxsize=65536)
def description(grants: tuple[str, ...]) -> str:
    """A security-group rule description naming the grants: legal characters only, at most 255."""
    names = sorted(set(grants))
    text = "netgen: " + ", ".join(names)
    if len(text) > 255:  # as many names as fit beside a "+N more" tail (linear: hot rules have thousands)
        length, shown = len("netgen: "), 0
        while shown < len(names):
            longer = length + len(names[shown]) + (2 if shown else 0)
            if longer + len(f" +{len(names) - shown - 1} more") > 255:
                break
            length, shown = longer, shown + 1
        text = "netgen: " + ", ".join(names[:shown]) + f" +{len(names) - shown} more"
    return _DESCRIPTION_OK.sub("_", text)


@dataclass(frozen=True, order=True)
class StackKey:
    account_id: str
    region: str
    part: str  # "network", or "sg-<group name>"
    account_name: str

    @property
    def name(self) -> str:
        name = f"netgen-{self.account_name}-{self.region}-{self.part}"
        if len(name) > 128:  # CloudFormation's limit on stack names
            name = f"{name[:117]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
        return name

    @property
    def path(self) -> str:
        return f"aws/{self.account_name}/{self.region}/{self.part}.json"


def stack_of(vpc: Vpc) -> StackKey:
    """The network stack (peerings and routes) of a VPC's account and region."""
    return StackKey(vpc.account.account_id, vpc.region, "network", vpc.account.name)


def gateway_stack_of(gateway: TransitGateway) -> StackKey:
    """The network stack of a transit gateway's owner account and region: its route tables' static routes."""
    return StackKey(gateway.account.account_id, gateway.region, "network", gateway.account.name)


def rules_stack_of(group: SecurityGroup, part: int = 0) -> StackKey:
    """The stack of a group's rules; an overflow group's rules (part 1..) have a stack of their own."""
    vpc = group.vpc
    suffix = f"-overflow-{part}" if part else ""
    return StackKey(vpc.account.account_id, vpc.region, f"sg-{group.name}{suffix}", vpc.account.name)
