"""A loopback twin of Anthropic's Admin API: the usage and cost reports and the API keys list/update.

Written from Anthropic's API reference (https://platform.claude.com/docs/en/api/admin/...):
"Get Messages Usage Report" (usage_report/retrieve_messages), "Get Cost Report" (cost_report),
"List API Keys", "Get API Key" and "Update API Key" (api_keys/list, retrieve, update), and
"Admin API overview" (https://docs.claude.com/en/api/administration-api).

* Every request needs `x-api-key: <admin key>` and `anthropic-version`; the Admin API "requires
  an Admin API key (starting with sk-ant-admin...)". A missing version is a 400
  `invalid_request_error`; a missing or unknown key, or an ordinary API key (sk-ant-api03-...),
  is a 401 `authentication_error`. Errors are `{"type": "error", "error": {"type", "message"}}`.
* `GET /v1/organizations/usage_report/messages`: `starting_at` (RFC 3339, required),
  `ending_at`, `bucket_width` 1d|1h|1m (this twin keeps daily data: 1d), `limit` (1d: default 7,
  at most 31), `group_by[]` of api_key_id, workspace_id, model, service_tier, context_window...,
  filters `api_key_ids[]`, `workspace_ids[]`, `models[]`, `page`. Answers `{data: [{starting_at,
  ending_at, results: [{uncached_input_tokens, cache_creation: {ephemeral_1h_input_tokens,
  ephemeral_5m_input_tokens}, cache_read_input_tokens, output_tokens, server_tool_use:
  {web_search_requests}, api_key_id, workspace_id, model, service_tier, context_window}]}],
  has_more, next_page}`.
* `GET /v1/organizations/cost_report`: `starting_at`, `ending_at`, `bucket_width` 1d, `limit`
  (default 7, at most 31), `group_by[]` of workspace_id, description, `page`. Each result:
  `{currency: "USD", amount: "<decimal string in cents>", workspace_id, description, cost_type,
  context_window, model, service_tier, token_type}`.
* `GET /v1/organizations/api_keys`: `limit` (1-1000, default 20), `after_id`, `before_id`,
  `status`, `workspace_id`, `created_by_user_id`; answers `{data, has_more, first_id, last_id}`,
  each key `{id, type: "api_key", name, workspace_id, created_at, created_by: {id, type},
  partial_key_hint, status}`. `POST /v1/organizations/api_keys/{id}` with `{name?, status?}`
  (status active|inactive|archived) answers the updated key; an unknown id is a 404.

Reading back: `requests` (headers included). Faults: `rate_limited` (the next N requests 429).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.servers._admin_twin import (
    JsonTwin,
    Query,
    Refusal,
    day_buckets,
    grouped,
    page_token,
    token_day,
)
from tests.servers._http import Request, parse_json

ADMIN_KEY = "sk-ant-admin01-twin-admin-key-Qx7wZ9AA"
API_KEY_WORK = "sk-ant-api03-R2Dtwin-work-key-0001-igAA"
API_KEY_HOME = "sk-ant-api03-H0Mtwin-home-key-0002-zzQQ"
USAGE_GROUPS = ("api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo")
COST_GROUPS = ("workspace_id", "description")
_TOKENS = ("uncached_input_tokens", "cache_read_input_tokens", "cache_5m", "cache_1h", "output_tokens")


def hint(key: str) -> str:
    """How the Console and the API show a key: its first 16 characters, "...", its last 4."""
    return f"{key[:16]}...{key[-4:]}"


@dataclass
class TwinKey:
    id: str
    name: str
    workspace_id: str | None
    created_at: str
    partial_key_hint: str
    status: str = "active"

    def json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "type": "api_key",
            "created_by": {"id": "user_01TwinOwner", "type": "user"},
        }


def _rfc3339(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
    except ValueError:
        raise _bad(f"{name}: Input should be a valid datetime") from None


def _bad(message: str) -> Refusal:
    return Refusal(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})


class AnthropicAdminTwin(JsonTwin):
    thread_name = "anthropic-admin-twin"
    start_error = "the Anthropic Admin API twin failed to start"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.admin_keys = {ADMIN_KEY}
        self.keys: list[TwinKey] = []
        self.usage: list[dict[str, Any]] = []  # one row per day, key, workspace and model
        self.costs: list[dict[str, Any]] = []

    # -- fixed fake data ------------------------------------------------------------------------
    def add_key(
        self,
        key_id: str,
        name: str,
        secret: str,
        workspace_id: str | None = None,
        created: str = "2025-03-01T09:30:00Z",
        status: str = "active",
    ) -> TwinKey:
        key = TwinKey(key_id, name, workspace_id, created, hint(secret), status)
        with self._lock:
            self.keys.append(key)
        return key

    def add_usage(
        self,
        day: date,
        key_id: str | None,
        model: str,
        uncached: int,
        output: int,
        *,
        workspace_id: str | None = None,
        cache_read: int = 0,
        cache_5m: int = 0,
    ) -> None:
        row = {
            "day": day,
            "api_key_id": key_id,
            "workspace_id": workspace_id,
            "model": model,
            "service_tier": "standard",
            "context_window": "0-200k",
            "inference_geo": "not_available",
            "uncached_input_tokens": uncached,
            "cache_read_input_tokens": cache_read,
            "cache_5m": cache_5m,
            "cache_1h": 0,
            "output_tokens": output,
        }
        with self._lock:
            self.usage.append(row)

    def add_cost(
        self, day: date, description: str, cents: float, *, workspace_id: str | None = None, model: str | None = None
    ) -> None:
        with self._lock:
            self.costs.append(
                {"day": day, "workspace_id": workspace_id, "description": description, "cents": cents, "model": model}
            )

    def seed(self, today: date) -> None:
        """A small organisation: two keys in two workspaces, a week of usage and costs."""
        self.add_key("apikey_01Work", "Work laptop", API_KEY_WORK, "wrkspc_01Research", "2025-02-11T08:00:00Z")
        self.add_key("apikey_01Home", "Home", API_KEY_HOME, None, "2025-04-02T18:45:00Z")
        self.add_key(
            "apikey_01Ci",
            "CI pipeline",
            "sk-ant-api03-C1Ptwin-ci-key-000000-x9Kp",
            "wrkspc_01Research",
            "2025-05-20T12:00:00Z",
        )
        for back in range(7):
            day = today - timedelta(days=back)
            self.add_usage(
                day,
                "apikey_01Work",
                "claude-sonnet-4-5",
                12_000 + 900 * back,
                3_400 + 100 * back,
                workspace_id="wrkspc_01Research",
                cache_read=2_000,
            )
            self.add_usage(day, "apikey_01Ci", "claude-haiku-4-5", 40_000, 6_000, workspace_id="wrkspc_01Research")
            if back % 2 == 0:
                self.add_usage(day, "apikey_01Home", "claude-sonnet-4-5", 5_000, 1_200)
            self.add_cost(
                day,
                "Claude Sonnet 4.5 Usage - Input Tokens",
                4_200 + 270 * back,
                workspace_id="wrkspc_01Research",
                model="claude-sonnet-4-5",
            )
            self.add_cost(
                day,
                "Claude Haiku 4.5 Usage - Input Tokens",
                4_000,
                workspace_id="wrkspc_01Research",
                model="claude-haiku-4-5",
            )

    # -- the API --------------------------------------------------------------------------------
    def too_many(self) -> Refusal:
        return Refusal(
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}},
            {"retry-after": "7"},
        )

    def route(self, req: Request, path: str, query: str) -> tuple[int, Any]:
        if not req.headers.get("anthropic-version"):
            raise _bad("anthropic-version: header is required")
        key = req.headers.get("x-api-key", "")
        with self._lock:
            admin = key in self.admin_keys
        if not admin:
            raise Refusal(
                401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
            )
        if path == "/v1/organizations/usage_report/messages" and req.method == "GET":
            return 200, self._usage_report(query)
        if path == "/v1/organizations/cost_report" and req.method == "GET":
            return 200, self._cost_report(query)
        if path == "/v1/organizations/api_keys" and req.method == "GET":
            return 200, self._list_keys(query)
        if path.startswith("/v1/organizations/api_keys/"):
            return 200, self._one_key(req, path.rsplit("/", 1)[1])
        raise Refusal(404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}})

    def _window(self, q: Query, widths: tuple[str, ...]) -> tuple[date, date | None, int, date | None]:
        start = _rfc3339(q.one("starting_at"), "starting_at")
        if start is None:
            raise _bad("starting_at: Field required")
        end = _rfc3339(q.one("ending_at"), "ending_at")
        width = q.one("bucket_width") or "1d"
        if width not in widths:
            raise _bad(f"bucket_width: Input should be {' or '.join(widths)}")
        if width != "1d":
            raise _bad("bucket_width: this twin keeps daily data only")
        limit = q.integer("limit", 7, 1, 31)
        page = q.one("page")
        return start, end, limit, token_day(page, _bad) if page else None

    def _usage_report(self, query: str) -> dict[str, Any]:
        names = ["starting_at", "ending_at", "bucket_width", "limit", "page"]
        names += [
            f"{n}[]" for n in ("group_by", "api_key_ids", "workspace_ids", "models", "service_tiers", "context_window")
        ]
        q = Query(query, names, _bad)
        start, end, limit, page = self._window(q, ("1d", "1h", "1m"))
        group_by = q.choices(["group_by[]"], USAGE_GROUPS)
        keys, spaces, models = q.many("api_key_ids[]"), q.many("workspace_ids[]"), q.many("models[]")
        days, next_day = day_buckets(start, end, limit, page)
        with self._lock:
            rows = [dict(r) for r in self.usage]
        data = []
        for day in days:
            chosen = [
                r
                for r in rows
                if r["day"] == day
                and (not keys or r["api_key_id"] in keys)
                and (not spaces or r["workspace_id"] in spaces)
                and (not models or r["model"] in models)
            ]
            results = []
            for total in grouped(chosen, USAGE_GROUPS, group_by, _TOKENS):
                results.append(
                    {
                        "uncached_input_tokens": total["uncached_input_tokens"],
                        "cache_creation": {
                            "ephemeral_1h_input_tokens": total["cache_1h"],
                            "ephemeral_5m_input_tokens": total["cache_5m"],
                        },
                        "cache_read_input_tokens": total["cache_read_input_tokens"],
                        "output_tokens": total["output_tokens"],
                        "server_tool_use": {"web_search_requests": 0},
                        **{d: total[d] for d in USAGE_GROUPS},
                    }
                )
            data.append(_bucket(day, results))
        return {"data": data, "has_more": next_day is not None, "next_page": page_token(next_day) if next_day else None}

    def _cost_report(self, query: str) -> dict[str, Any]:
        q = Query(query, ["starting_at", "ending_at", "bucket_width", "limit", "page", "group_by[]"], _bad)
        start, end, limit, page = self._window(q, ("1d",))
        group_by = q.choices(["group_by[]"], COST_GROUPS)
        days, next_day = day_buckets(start, end, limit, page)
        with self._lock:
            rows = [dict(r) for r in self.costs]
        data = []
        for day in days:
            results = []
            for total in grouped([r for r in rows if r["day"] == day], COST_GROUPS, group_by, ("cents",)):
                model = next((r["model"] for r in rows if r["description"] == total["description"]), None)
                results.append(
                    {
                        "currency": "USD",
                        "amount": f"{total['cents']:.2f}",
                        "workspace_id": total["workspace_id"],
                        "description": total["description"],
                        "cost_type": "tokens" if total["description"] else None,
                        "context_window": None,
                        "model": model if "description" in group_by else None,
                        "service_tier": None,
                        "token_type": None,
                    }
                )
            data.append(_bucket(day, results))
        return {"data": data, "has_more": next_day is not None, "next_page": page_token(next_day) if next_day else None}

    def _list_keys(self, query: str) -> dict[str, Any]:
        q = Query(query, ["limit", "after_id", "before_id", "status", "workspace_id", "created_by_user_id"], _bad)
        limit = q.integer("limit", 20, 1, 1000)
        after, before = q.one("after_id"), q.one("before_id")
        if after and before:
            raise _bad("Only one of after_id and before_id may be given")
        status = q.one("status")
        if status is not None and status not in ("active", "inactive", "archived"):
            raise _bad("status: Input should be 'active', 'inactive' or 'archived'")
        with self._lock:
            keys = [k for k in self.keys if status is None or k.status == status]
        ids = [k.id for k in keys]
        if after is not None:
            if after not in ids:
                raise _bad("after_id: unknown id")
            keys = keys[ids.index(after) + 1 :]
        chosen = keys[:limit]
        return {
            "data": [k.json() for k in chosen],
            "has_more": len(keys) > limit,
            "first_id": chosen[0].id if chosen else None,
            "last_id": chosen[-1].id if chosen else None,
        }

    def _one_key(self, req: Request, key_id: str) -> dict[str, Any]:
        with self._lock:
            key = next((k for k in self.keys if k.id == key_id), None)
            if key is None:
                raise Refusal(
                    404, {"type": "error", "error": {"type": "not_found_error", "message": "API key not found"}}
                )
            if req.method == "GET":
                return key.json()
            if req.method != "POST":
                raise Refusal(
                    405, {"type": "error", "error": {"type": "invalid_request_error", "message": "Method not allowed"}}
                )
            body = parse_json(req.raw_body)
            if not isinstance(body, dict) or set(body) - {"name", "status"}:
                raise _bad("body: only name and status can be updated")
            if "status" in body and body["status"] not in ("active", "inactive", "archived"):
                raise _bad("status: Input should be 'active', 'inactive' or 'archived'")
            key.status = body.get("status", key.status)
            key.name = body.get("name", key.name)
            return key.json()


def _bucket(day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "starting_at": f"{day.isoformat()}T00:00:00Z",
        "ending_at": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
        "results": results,
    }
