"""A strict loopback twin of Claude on Google Vertex AI: the OAuth token endpoint and the Anthropic
publisher's rawPredict / streamRawPredict, with Anthropic's body and events.

Follows these pages:
- Claude on Vertex AI (docs.claude.com/en/api/claude-on-vertex-ai, cloud.google.com/vertex-ai/
  generative-ai/docs/partner-models/claude): ``POST /v1/projects/{project}/locations/{location}/
  publishers/anthropic/models/{model}:streamRawPredict`` (or ``:rawPredict``), ``Authorization:
  Bearer <access token>``, the Messages body without ``model`` (it is in the URL) and with
  ``anthropic_version: "vertex-2023-10-16"``; answers and events are the Messages API's, so they
  come from ``anthropic_fault`` (the project's behaviour is ``behaviour[client_email]``).
- Service-account authorisation (developers.google.com/identity/protocols/oauth2/service-account,
  "Preparing to make an authorized API call"): ``POST token_uri`` with ``grant_type=urn:ietf:params:
  oauth:grant-type:jwt-bearer`` and ``assertion=<JWT>``, the JWT signed RS256 with the service
  account's private key, claims ``iss`` (client_email), ``scope``, ``aud``, ``iat`` and
  ``exp`` (at most an hour later); ``aud`` is always https://oauth2.googleapis.com/token. The twin checks the signature against the account's public key;
  a bad one is ``400 {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}``.
- Publisher models (cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/publishers.models/list):
  ``GET /v1beta1/publishers/anthropic/models`` with the bearer token, ``{"publisherModels": [...]}``.
A missing or unknown access token is ``401 UNAUTHENTICATED`` in Google's error shape.

Use it in-process: ``with VertexServer() as twin: info = twin.service_account("ci@proj.iam...")``
gives a service-account JSON (a throwaway RSA key) whose ``token_uri`` points at the twin.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.servers._fault import json_answer
from tests.servers._http import Exchange, Request, send
from tests.servers.anthropic_fault import MODELS, AnthropicServer

VERTEX_VERSION = "vertex-2023-10-16"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# The JWT's "aud" is always Google's token endpoint, wherever the key's token_uri sends it.
AUDIENCE = "https://oauth2.googleapis.com/token"
_PREDICT = re.compile(
    r"/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(streamRawPredict|rawPredict)"
)
# Vertex names Claude models with a version after "@" (claude-sonnet-4-5@20250929).
VERSIONS = {"claude-haiku-4-5": "20251001", "claude-sonnet-4-5": "20250929", "claude-opus-4-1": "20250805"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VertexServer(AnthropicServer):
    """``behaviour[client_email]`` picks what that service account's requests get (see anthropic_fault)."""

    thread_name = "vertex-anthropic-twin"
    start_error = "Vertex AI twin failed to start"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port, valid_keys=set())
        self._public_keys: dict[str, Any] = {}  # client_email -> RSA public key
        self._tokens: dict[str, str] = {}  # access token -> client_email
        self.grants: list[dict[str, Any]] = []  # the JWT claims of every token granted
        self.predicted: list[str] = []  # path of every predict call (project, location and model)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def service_account(self, client_email: str, project_id: str = "twin-project") -> str:
        """A service-account key file's JSON for a new throwaway RSA key that this twin trusts."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        with self._lock:
            self._public_keys[client_email] = key.public_key()
            self.valid_keys.add(client_email)
        return json.dumps(
            {
                "type": "service_account",
                "project_id": project_id,
                "private_key_id": secrets.token_hex(20),
                "private_key": pem,
                "client_email": client_email,
                "client_id": "1" * 21,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": f"{self.endpoint}/token",
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "universe_domain": "googleapis.com",
            }
        )

    def revoke(self, client_email: str) -> None:
        """The key is deleted in the console: its JWTs are refused and its tokens stop working."""
        with self._lock:
            self._public_keys.pop(client_email, None)
            self._tokens = {t: e for t, e in self._tokens.items() if e != client_email}

    async def _respond(self, req: Request, writer: asyncio.StreamWriter, state: Exchange) -> bool:
        path = req.path.partition("?")[0]
        if path == "/token":
            status, payload = self._grant(req)
            return await send(writer, json_answer(status, payload, [("cache-control", "no-store")]))
        email = self._token_owner(req)
        if email is None:
            return await send(
                writer, _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            )
        if req.method == "GET" and path == "/v1beta1/publishers/anthropic/models":
            return await send(writer, json_answer(200, _publisher_models(), []))
        predict = _PREDICT.fullmatch(path)
        if req.method != "POST" or predict is None:
            return await send(writer, _google_error(404, "NOT_FOUND", f"The requested URL {path} was not found."))
        with self._lock:
            self.predicted.append(path)
        try:
            body = json.loads(req.raw_body)
        except ValueError:
            return await send(writer, _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
        if not isinstance(body, dict) or body.pop("anthropic_version", None) != VERTEX_VERSION:
            return await send(
                writer, _google_error(400, "INVALID_ARGUMENT", "anthropic_version: vertex-2023-10-16 is required.")
            )
        model = predict.group(3)
        name, _, version = model.partition("@")
        if VERSIONS.get(name) != version:
            return await send(
                writer,
                _google_error(
                    404,
                    "NOT_FOUND",
                    f"Publisher Model `{model}` was not found or your project does not have access to it.",
                ),
            )
        body["model"] = name
        if predict.group(4) == "streamRawPredict" and not body.get("stream"):
            body["stream"] = True
        # The rest is the Messages API: answered by the Anthropic machinery as for this account's key.
        inner = Request(
            "POST",
            "/v1/messages",
            {**req.headers, "x-api-key": email, "anthropic-version": "2023-06-01"},
            json.dumps(body).encode(),
        )
        return await super()._respond(inner, writer, state)

    def _token_owner(self, req: Request) -> str | None:
        auth = req.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            return self._tokens.get(token)

    def _grant(self, req: Request) -> tuple[int, dict[str, Any]]:
        form = {k: v[0] for k, v in parse_qs(req.raw_body.decode("ascii", "replace")).items()}
        if req.method != "POST" or form.get("grant_type") != JWT_BEARER or "assertion" not in form:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}
        try:
            head_b64, claims_b64, signature_b64 = form["assertion"].split(".")
            header, claims = json.loads(_unb64url(head_b64)), json.loads(_unb64url(claims_b64))
            signature = _unb64url(signature_b64)
        except ValueError:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Invalid JWT: Token must be a short-lived token",
            }
        with self._lock:
            public_key = self._public_keys.get(str(claims.get("iss")))
        if header.get("alg") != "RS256" or public_key is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        try:
            public_key.verify(signature, f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:  # noqa: BLE001 (cryptography's InvalidSignature)
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            claims.get("aud") != AUDIENCE
            or not isinstance(iat, int)
            or not isinstance(exp, int)
            or not iat - 300 <= now <= exp
            or exp - iat > 3600
        ):
            return 400, {
                "error": "invalid_grant",
                "error_description": "Invalid JWT: Token must be a short-lived token",
            }
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return 400, {
                "error": "invalid_scope",
                "error_description": "Invalid OAuth scope or ID token audience provided.",
            }
        token = "ya29.twin-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = str(claims["iss"])
            self.grants.append(claims)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}


def _google_error(status: int, reason: str, message: str) -> bytes:
    return json_answer(status, {"error": {"code": status, "message": message, "status": reason}}, [])


def _publisher_models() -> dict[str, Any]:
    return {
        "publisherModels": [
            {
                "name": f"publishers/anthropic/models/{model_id}",
                "versionId": VERSIONS[model_id],
                "openSourceCategory": "PROPRIETARY",
                "launchStage": "GA",
            }
            for model_id, _display, _created in MODELS
            if model_id in VERSIONS
        ]
    }
