"""Credentials of cloud providers that sign in with more than a key: a Google service account's
OAuth access token (Vertex AI), AWS Signature Version 4 (Bedrock), and which optional extra a
provider's SDK comes from.

google-auth is an optional extra (`pip install 'modeldesk[vertex]'`); it is imported here only when
a Vertex AI account is used, and the token exchange (blocking HTTP) runs on a worker thread.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Generic, TypeVar

from desktop_app.domain.cloud_secrets import parse_aws_credentials, parse_service_account
from desktop_app.domain.errors import AuthFailed, BadRequest, DomainError, Unreachable
from desktop_app.domain.providers import Provider

_T = TypeVar("_T")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# The modules each extra installs, and the sentence that says how to get them.
_EXTRA_MODULES = {"vertex": ("google.auth", "google.oauth2.service_account"), "bedrock": ("botocore",)}


def missing_extra(provider: Provider) -> str | None:
    """One sentence when the provider needs packages that are not installed, else None."""
    if not provider.extra:
        return None
    for module in _EXTRA_MODULES.get(provider.extra, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{provider.name} needs an extra package: pip install 'modeldesk[{provider.extra}]'."
    return None


class _Hidden(Generic[_T]):
    """A secret handed to or from a worker thread: executors log their callbacks' arguments and
    results at DEBUG (qasync does), so their repr must not be the secret."""

    __slots__ = ("value",)

    def __init__(self, value: _T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"


def _refresh(key_json: _Hidden[str]) -> _Hidden[str]:
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    info = parse_service_account(key_json.value)
    credentials = service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM])
    credentials.refresh(Request())
    return _Hidden(str(credentials.token))


async def google_access_token(provider: Provider, key_json: str) -> str:
    """An OAuth access token for the service account in `key_json`; a DomainError (never quoting the
    key) when google-auth is missing, the key is malformed or refused, or its token_uri cannot be reached."""
    missing = missing_extra(provider)
    if missing is not None:
        raise BadRequest(missing, "Install it, then restart ModelDesk.")
    try:
        return (await asyncio.to_thread(_refresh, _Hidden(key_json))).value
    except ValueError as exc:
        if type(exc) is ValueError:  # ours, from parse_service_account: one sentence
            raise BadRequest(f"{str(exc)[:1].upper()}{str(exc)[1:]}.", "Load the key file again.") from None
        raise _mapped(exc) from None
    except Exception as exc:  # noqa: BLE001 (google-auth's RefreshError and TransportError)
        raise _mapped(exc) from None


def _mapped(exc: BaseException) -> DomainError:
    from google.auth import exceptions

    if isinstance(exc, exceptions.TransportError):
        return Unreachable(
            "Could not reach the service account's token server.", "Check the network and the key file's token_uri."
        )
    if isinstance(exc, exceptions.RefreshError):
        return AuthFailed(
            "Google refused the service-account key.", "Create a new key for the service account and load it."
        )
    return AuthFailed("The service-account key could not be used.", "Load the key file Google Cloud gave you again.")


def _sign(credentials: _Hidden[str] | None, profile: str | None, region: str, url: str) -> _Hidden[dict[str, str]]:
    import botocore.session  # type: ignore[import-untyped]
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
    from botocore.credentials import Credentials  # type: ignore[import-untyped]

    if credentials is not None:
        values = parse_aws_credentials(credentials.value)
        signer = Credentials(
            values["aws_access_key_id"], values["aws_secret_access_key"], values.get("aws_session_token")
        )
    else:
        signer = botocore.session.Session(profile=profile).get_credentials()
        if signer is None:
            raise LookupError(profile)
    request = AWSRequest(method="GET", url=url, headers={"accept": "application/json"})
    SigV4Auth(signer, "bedrock", region).add_auth(request)
    return _Hidden({name: str(value) for name, value in request.headers.items()})


async def aws_signed_headers(
    provider: Provider, key_json: str | None, profile: str | None, region: str, url: str
) -> dict[str, str]:
    """The SigV4 headers of a GET of `url` to Bedrock's control plane, signed with the stored keys
    (or the named AWS profile's); a DomainError (never quoting a secret) when that cannot be done."""
    missing = missing_extra(provider)
    if missing is not None:
        raise BadRequest(missing, "Install it, then restart ModelDesk.")
    hidden = _Hidden(key_json) if key_json else None
    try:
        return (await asyncio.to_thread(_sign, hidden, profile, region, url)).value
    except LookupError:
        raise AuthFailed(
            f"The AWS profile “{profile}” has no credentials.", "Sign in with the AWS CLI first."
        ) from None
    except ValueError as exc:
        raise BadRequest(f"{str(exc)[:1].upper()}{str(exc)[1:]}.", "Type the keys again.") from None
    except Exception as exc:  # noqa: BLE001 (botocore's ProfileNotFound and friends)
        name = type(exc).__name__
        if name == "ProfileNotFound":
            raise BadRequest(f"There is no AWS profile named “{profile}”.", "Check ~/.aws/config.") from None
        raise AuthFailed("The AWS credentials could not be used.", "Check the keys or the profile.") from None
