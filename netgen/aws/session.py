"""boto3 clients per (account, region).

Credentials come from the standard boto3 chain: the account's `profile` when the inventory names one
(Account.spec.profile), else the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, instance roles, ...). Every
client retries throttling and transient errors with botocore's adaptive retry mode (exponential backoff plus
client-side rate limiting), up to 10 retries.

`endpoint_url` sends every request to one endpoint (moto in server mode, LocalStack, a VPC endpoint).
`account_header` is for moto's multi-account server mode only: moto takes a request's account from the
`x-moto-account-id` header, so each client then sends the id of the account it is for. The CLI turns it on
when the environment variable NETGEN_AWS_ACCOUNT_HEADER names the header (tests only; never needed on AWS).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

RETRIES = {"mode": "adaptive", "max_attempts": 10}
ACCOUNT_HEADER_ENV = "NETGEN_AWS_ACCOUNT_HEADER"
MAX_POOL = 64  # connections per client: deploy runs up to that many stacks at once (deploy/scheduler.py)


class Clients:
    """Cached boto3 clients: client(service, account id, region)."""

    def __init__(self, profiles: Mapping[str, str | None] | None = None, endpoint_url: str | None = None,
                 account_header: str | None = None, default_profile: str | None = None):
        self.profiles = dict(profiles or {})
        self.default_profile = default_profile
        self.endpoint_url = endpoint_url
        self.account_header = account_header
        self._sessions: dict[str | None, Any] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()  # deploy asks from several threads; boto3 sessions are not thread-safe

    @classmethod
    def from_environment(cls, profiles: Mapping[str, str | None] | None = None, endpoint_url: str | None = None,
                         default_profile: str | None = None) -> Clients:
        return cls(profiles, endpoint_url, os.environ.get(ACCOUNT_HEADER_ENV) or None, default_profile)

    def session(self, account_id: str) -> Any:
        import boto3

        profile = self.profiles.get(account_id) or self.default_profile
        if profile not in self._sessions:
            self._sessions[profile] = boto3.session.Session(profile_name=profile)
        return self._sessions[profile]

    def client(self, service: str, account_id: str, region: str) -> Any:
        key = (service, account_id, region)
        with self._lock:
            return self._clients.get(key) or self._new_client(key)

    def _new_client(self, key: tuple[str, str, str]) -> Any:
        from botocore.config import Config

        service, account_id, region = key
        client = self.session(account_id).client(
            service, region_name=region, endpoint_url=self.endpoint_url,
            config=Config(retries=dict(RETRIES), user_agent_extra="netgen", max_pool_connections=MAX_POOL))
        if self.account_header and account_id:
            header = self.account_header

            def as_account(request: Any, **_: Any) -> None:
                request.headers[header] = account_id

            client.meta.events.register("before-sign.*.*", as_account)
        self._clients[key] = client
        return client

    def ec2(self, account_id: str, region: str) -> Any:
        return self.client("ec2", account_id, region)

    def cloudformation(self, account_id: str, region: str) -> Any:
        return self.client("cloudformation", account_id, region)


def error_text(exc: BaseException) -> str:
    """A one-line message for a botocore error (ClientError, credentials, endpoint)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    if type(exc).__name__ == "ResponseParserError":  # an HTML error page (moto: an action it does not implement)
        return "the endpoint's answer is not an AWS API response (does it implement this action?)"
    return f"{type(exc).__name__}: {exc}"
