"""Where a stack lives: region, account and partition, and the ARNs and URIs built from them.

The account always comes from STS (the caller's own), never from canvas.yaml or a constant.
"""
from __future__ import annotations

from dataclasses import dataclass

from reconciler.normalize import partition


@dataclass(frozen=True)
class Target:
    region: str
    account: str

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
