"""The secrets of cloud accounts that are more than a key, each one JSON document in the keyring: a
Google service-account key file (Vertex AI) and AWS credentials (Bedrock)."""

from __future__ import annotations

import json
import re
from typing import Any

REQUIRED = ("client_email", "private_key", "token_uri")


def parse_service_account(text: str) -> dict[str, Any]:
    """The key file's fields; ValueError with one sentence (never quoting the key) when it is not one."""
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError("the service-account key is not JSON; load the key file Google Cloud gave you") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError("this JSON is not a service-account key (its “type” is not “service_account”)")
    missing = [name for name in REQUIRED if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        raise ValueError(f"the service-account key has no {missing[0]}")
    if "PRIVATE KEY" not in info["private_key"]:
        raise ValueError("the service-account key's private_key is not a PEM key")
    return info


def service_account_project(text: str) -> str | None:
    """The project a service-account key belongs to (its project_id, no secret), or None."""
    try:
        project = parse_service_account(text).get("project_id")
    except ValueError:
        return None
    return project if isinstance(project, str) and project else None


def one_line(text: str) -> str:
    """The key file as one line of compact JSON (what the key field and the keyring hold)."""
    return json.dumps(parse_service_account(text), separators=(",", ":"))


AWS_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def parse_aws_credentials(text: str) -> dict[str, str]:
    """{"aws_access_key_id", "aws_secret_access_key"[, "aws_session_token"]}; ValueError with one
    sentence (never quoting the secret) when it is not that."""
    try:
        values = json.loads(text)
    except ValueError:
        raise ValueError("the AWS credentials are not readable; type the access key id and secret again") from None
    if not isinstance(values, dict) or not all(isinstance(values.get(n, ""), str) for n in AWS_FIELDS):
        raise ValueError("the AWS credentials are not readable; type the access key id and secret again")
    if not re.fullmatch(r"[A-Z0-9]{16,128}", values.get("aws_access_key_id", "")):
        raise ValueError("an AWS access key id is 16 or more capital letters and digits (AKIA…)")
    if not values.get("aws_secret_access_key"):
        raise ValueError("the AWS secret access key is missing")
    return {name: values[name] for name in AWS_FIELDS if values.get(name)}


def aws_credentials(access_key_id: str, secret: str, session_token: str = "") -> str:
    """The JSON the keyring keeps for an AWS account's credentials (checked)."""
    values = {"aws_access_key_id": access_key_id.strip(), "aws_secret_access_key": secret.strip()}
    if session_token.strip():
        values["aws_session_token"] = session_token.strip()
    text = json.dumps(values, separators=(",", ":"))
    parse_aws_credentials(text)
    return text


def parse_cloud_secret(kind: str, text: str) -> object:
    return parse_service_account(text) if kind == "google" else parse_aws_credentials(text)
