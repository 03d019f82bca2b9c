"""A LiteLLM Proxy without a database, on loopback: the OpenAI fault server behind its key gate.

The real proxy (litellm/proxy/auth/user_api_key_auth.py) accepts only the master key when it has
no database; any other key, on every route, gets 400 with type ``no_db_connection`` and the
message "No connected db." (not 401). With the master key the routes behave as ``openai_fault``.
Only the standard library is imported.
"""

from __future__ import annotations

from typing import Any

from tests.servers._http import Request
from tests.servers.openai_fault import ApiError, FaultServer

MASTER_KEY = "sk-master-1234"


class ProxyWithoutDatabase(FaultServer):
    thread_name = "litellm-proxy-no-db"
    default_keys = (MASTER_KEY,)

    def _route(self, req: Request) -> Any:
        auth = req.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if key and key not in self.valid_keys:
            raise ApiError(400, "No connected db.", type_="no_db_connection", code="400")
        return super()._route(req)
