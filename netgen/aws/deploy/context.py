"""What every part of a deploy shares: its options, the AWS clients, the console, and the live stacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netgen.aws.deploy.console import Console
from netgen.aws.deploy.state import LiveStacks

DEFAULT_CONCURRENCY = 4  # stacks deployed at once per account and region


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    ec2_peering: bool = False  # moto: cross-region and cross-account peerings through the EC2 API (moto.py)
    template_bucket: str | None = None  # a pattern, see lifecycle.template_bucket_for
    poll_seconds: float = 2.0
    timeout_seconds: float = 3600.0
    concurrency: int = DEFAULT_CONCURRENCY
    full: bool = False  # a change set for every stack, even one whose digest says it is unchanged
    skip_preflight: bool = False


@dataclass
class Context:
    clients: Any
    console: Console
    options: Options
    live: LiveStacks

    def say(self, message: str, stack: str | None = None) -> None:
        self.console.say(message, stack)

    def repair(self, stack: str, text: str) -> None:
        self.console.repair(stack, text, self.options.dry_run)


def botocore_errors() -> tuple[type[BaseException], ...]:
    """What a boto3 call raises for an AWS answer or a transport problem. A ResponseParserError is an endpoint
    answering what it does not implement (moto: HTTP 500 with an HTML page)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return ClientError, BotoCoreError, ResponseParserError


class StackFailed(Exception):
    def __init__(self, stack: str, reason: str, events: list[str] | None = None):
        super().__init__(reason)
        self.stack, self.reason, self.events = stack, reason, events or []
