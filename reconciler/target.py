"""Where a stack lives: region, account and partition, and the ARNs and URIs built from them.

The account always comes from STS (the caller's own), never from canvas.yaml or a constant.
"""
from __future__ import annotations

from concurrent.futures import Future

from reconciler.normalize import partition


class Target:
    """The account may be a Future: a plan asks STS in its first wave, beside the reads that need
    only names, and only what builds an ARN or URI waits for the answer."""

    def __init__(self, *, region: str, account: str | Future):
        self.region = region
        self._account = account

    @property
    def account(self) -> str:
        return self._account.result() if isinstance(self._account, Future) else self._account

    def __repr__(self) -> str:
        return f"Target(region={self.region!r}, account={self._account!r})"

    @property
    def partition(self) -> str:
        return partition(self.region)

    def role_arn(self, role_name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{role_name}"

    def repository_uri(self, repository: str) -> str:
        suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
        return f"{self.account}.dkr.ecr.{self.region}.{suffix}/{repository}"


def discover(clients, region: str) -> Target:
    return Target(region=region, account=clients.sts.get_caller_identity()["Account"])
