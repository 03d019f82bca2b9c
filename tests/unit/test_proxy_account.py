"""A LiteLLM Proxy account: Check lists the proxy's models and says what the key has spent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.settings import Settings
from desktop_app.services.accounts.accounts import AccountService
from desktop_app.services.accounts.catalog import CheckStatus, ModelCatalog
from desktop_app.services.accounts.secrets import SecretStore
from desktop_app.services.settings import SettingsService
from desktop_app.services.settings_store import SettingsStore

KEY = "sk-virtual-1234"


class Proxy:
    """/v1/models and /key/info as a LiteLLM Proxy with a database answers them."""

    def __init__(self, *, database: bool) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("authorization") != f"Bearer {KEY}":
                    status, payload = 401, {"error": {"message": "Authentication Error", "code": "401"}}
                elif self.path == "/v1/models":
                    status, payload = (
                        200,
                        {
                            "object": "list",
                            "data": [
                                {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "openai"},
                                {"id": "claude-pool", "object": "model", "created": 0, "owned_by": "openai"},
                            ],
                        },
                    )
                elif self.path.startswith("/key/info") and database:
                    status, payload = (
                        200,
                        {
                            "key": "hashed",
                            "info": {"spend": 1.25, "max_budget": 10.0, "models": [], "key_alias": "team"},
                        },
                    )
                elif self.path.startswith("/key/info"):
                    status, payload = 500, {"error": {"message": "Database not connected", "code": "500"}}
                else:
                    status, payload = 404, {"detail": "Not Found"}
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("database", "sentence"),
    [
        (True, "This key has spent $1.25 of $10.00."),
        (False, "This LiteLLM Proxy keeps no spend records (it has no database)."),
    ],
)
async def test_check_lists_the_proxys_models_and_its_spend(tmp_path, database, sentence):
    proxy = Proxy(database=database)
    try:
        async with httpx.AsyncClient(trust_env=False) as http:
            secrets = SecretStore()
            catalog = ModelCatalog(http=http, cache_file=tmp_path / "models.json")
            service = AccountService(
                settings=SettingsService(store=SettingsStore(tmp_path / "s.json"), settings=Settings()),
                secrets=secrets,
                catalog=catalog,
            )
            account = Account(provider_id="litellm_proxy", label="Team gateway", base_url=proxy.base_url)
            await service.save_account(account, KEY)
            result = await service.check(account)
            assert result.status is CheckStatus.OK
            assert result.models == ("claude-pool", "gpt-4o-mini")
            assert result.message.startswith("OK: the key works and 2 models are available.")
            assert sentence in result.message
            assert KEY not in result.message
            await secrets.close()
    finally:
        proxy.close()
