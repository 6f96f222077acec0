"""ARNs in Rekognition's formats, shared by the native API and the AWS-compatible layer."""

from __future__ import annotations

from datetime import datetime


def epoch_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def project_arn(region: str, account: str, project: str, created: datetime) -> str:
    return f"arn:aws:rekognition:{region}:{account}:project/{project}/{epoch_ms(created)}"


def version_arn(region: str, account: str, project: str, version: str, created: datetime) -> str:
    return f"arn:aws:rekognition:{region}:{account}:project/{project}/version/{version}/{epoch_ms(created)}"


def dataset_arn(region: str, account: str, project: str, dataset_type: str, created: datetime) -> str:
    base = f"arn:aws:rekognition:{region}:{account}:project/{project}"
    return f"{base}/dataset/{dataset_type.lower()}/{epoch_ms(created)}"
