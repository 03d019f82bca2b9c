"""A loopback twin of OpenAI's Administration API: organisation usage and costs, projects and their keys.

Written from OpenAI's API reference (https://platform.openai.com/docs/api-reference/usage,
.../usage/costs, .../projects, .../project-api-keys, and the Administration overview,
https://platform.openai.com/docs/api-reference/administration):

* Every request needs `Authorization: Bearer <admin key>`; "admin API keys cannot be used for
  non-administration endpoints" and project keys cannot reach these. No header: 401 with
  "You didn't provide an API key"; an unknown key: 401 `invalid_api_key`; a project or user key
  (sk-proj-..., sk-...): 403 "insufficient permissions". Errors are `{"error": {"message",
  "type", "param", "code"}}`.
* `GET /v1/organization/usage/completions`: `start_time` (unix seconds, required), `end_time`,
  `bucket_width` 1m|1h|1d (this twin keeps daily data: 1d), `limit` (1d: default 7, at most 31),
  `group_by` of project_id, user_id, api_key_id, model, batch, service_tier, filters
  `project_ids`, `user_ids`, `api_key_ids`, `models`, `batch`, `page`. Answers `{object: "page",
  data: [{object: "bucket", start_time, end_time, results: [{object:
  "organization.usage.completions.result", input_tokens, output_tokens, input_cached_tokens,
  input_audio_tokens, output_audio_tokens, num_model_requests, project_id, user_id, api_key_id,
  model, batch}]}], has_more, next_page}`.
* `GET /v1/organization/costs`: `start_time`, `end_time`, `bucket_width` 1d only, `limit` (1-180,
  default 7), `group_by` of project_id, line_item, `project_ids`, `page`; each result
  `{object: "organization.costs.result", amount: {value, currency: "usd"}, line_item, project_id}`.
* `GET /v1/organization/projects` (`limit` 1-100, default 20, `after`, `include_archived`) and
  `GET /v1/organization/projects/{id}/api_keys` (`limit`, `after`): `{object: "list", data,
  first_id, last_id, has_more}`; a project key is `{object: "organization.project.api_key",
  redacted_value, name, created_at, last_used_at, id, owner}`. There is no call that switches a
  key off: `DELETE .../api_keys/{key_id}` deletes it (not offered here; ModelDesk never deletes).

Array parameters are accepted as `name` or `name[]`. Faults: `rate_limited` (the next N 429).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.servers._admin_twin import JsonTwin, Query, Refusal, day_buckets, grouped, page_token, token_day
from tests.servers._http import Request

ADMIN_KEY = "sk-admin-twinAdminKey0123456789abcdef"
PROJECT_KEY_WEB = "sk-proj-WebTwinKey-0123456789-abcdefgh-Wq3T"
PROJECT_KEY_BATCH = "sk-proj-BatchTwinKey-9876543210-zyxw-Pn8R"
USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
COST_GROUPS = ("project_id", "line_item")
_SUMS = ("input_tokens", "output_tokens", "input_cached_tokens", "num_model_requests")


def redacted(key: str) -> str:
    """How the API shows a project key: "sk-proj-" plus 3 characters, "...", the last 4."""
    return f"{key[:11]}...{key[-4:]}"


@dataclass
class TwinProject:
    id: str
    name: str
    created_at: int
    keys: list[dict[str, Any]]


def _error(
    status: int, message: str, type_: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> Refusal:
    return Refusal(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


def _bad(message: str) -> Refusal:
    return _error(400, message, param=message.partition(":")[0] or None)


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


class OpenAIAdminTwin(JsonTwin):
    thread_name = "openai-admin-twin"
    start_error = "the OpenAI Administration API twin failed to start"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.admin_keys = {ADMIN_KEY}
        self.project_keys = {PROJECT_KEY_WEB, PROJECT_KEY_BATCH}
        self.projects: list[TwinProject] = []
        self.usage: list[dict[str, Any]] = []
        self.costs: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- fixed fake data ------------------------------------------------------------------------
    def add_project(self, project_id: str, name: str) -> TwinProject:
        project = TwinProject(project_id, name, 1_735_689_600, [])
        with self._lock:
            self.projects.append(project)
        return project

    def add_key(
        self, project: TwinProject, key_id: str, name: str, secret: str, created_at: int = 1_738_368_000
    ) -> None:
        with self._lock:
            project.keys.append(
                {
                    "object": "organization.project.api_key",
                    "redacted_value": redacted(secret),
                    "name": name,
                    "created_at": created_at,
                    "last_used_at": created_at + 86_400,
                    "id": key_id,
                    "owner": {
                        "type": "user",
                        "user": {
                            "object": "organization.project.user",
                            "id": "user_twin",
                            "name": "Twin Owner",
                            "email": "owner@example.invalid",
                            "role": "owner",
                            "added_at": created_at,
                        },
                    },
                }
            )

    def add_usage(
        self,
        day: date,
        key_id: str | None,
        project_id: str | None,
        model: str,
        input_tokens: int,
        output_tokens: int,
        requests: int = 1,
        cached: int = 0,
    ) -> None:
        with self._lock:
            self.usage.append(
                {
                    "day": day,
                    "project_id": project_id,
                    "user_id": None,
                    "api_key_id": key_id,
                    "model": model,
                    "batch": False,
                    "service_tier": "default",
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "input_cached_tokens": cached,
                    "num_model_requests": requests,
                }
            )

    def add_cost(self, day: date, project_id: str | None, line_item: str, usd: float) -> None:
        with self._lock:
            self.costs.append({"day": day, "project_id": project_id, "line_item": line_item, "value": usd})

    def seed(self, today: date) -> None:
        web = self.add_project("proj_Web01", "Website")
        batch = self.add_project("proj_Batch02", "Nightly batch")
        self.add_key(web, "key_Web01", "website backend", PROJECT_KEY_WEB)
        self.add_key(batch, "key_Batch01", "batch runner", PROJECT_KEY_BATCH)
        for back in range(7):
            day = today - timedelta(days=back)
            self.add_usage(day, "key_Web01", "proj_Web01", "gpt-4o-mini-2024-07-18", 20_000 + 500 * back, 4_000, 40)
            self.add_usage(day, "key_Batch01", "proj_Batch02", "gpt-4o-2024-08-06", 90_000, 15_000, 12)
            self.add_cost(day, "proj_Web01", "gpt-4o-mini-2024-07-18, input", 0.003 * (20 + back / 2))
            self.add_cost(day, "proj_Batch02", "gpt-4o-2024-08-06, input", 0.225)

    # -- the API --------------------------------------------------------------------------------
    def too_many(self) -> Refusal:
        return Refusal(
            429,
            {
                "error": {
                    "message": "Rate limit reached for requests",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            {"retry-after": "5"},
        )

    def route(self, req: Request, path: str, query: str) -> tuple[int, Any]:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.",
            )
        key = auth[7:].strip()
        with self._lock:
            admin, project_key = key in self.admin_keys, key in self.project_keys
        if project_key:
            raise _error(403, "You have insufficient permissions for this operation. Missing scopes: api.usage.read.")
        if not admin:
            raise _error(401, "Incorrect API key provided.", code="invalid_api_key")
        if req.method != "GET":
            raise _error(405, "Method not allowed.")
        if path == "/v1/organization/usage/completions":
            return 200, self._usage_page(query)
        if path == "/v1/organization/costs":
            return 200, self._costs_page(query)
        if path == "/v1/organization/projects":
            with self._lock:
                items = [
                    {
                        "id": p.id,
                        "object": "organization.project",
                        "name": p.name,
                        "created_at": p.created_at,
                        "archived_at": None,
                        "status": "active",
                    }
                    for p in self.projects
                ]
            return 200, self._list(query, items, ["limit", "after", "include_archived"], 100)
        parts = path.split("/")
        if len(parts) == 6 and parts[:4] == ["", "v1", "organization", "projects"] and parts[5] == "api_keys":
            with self._lock:
                project = next((p for p in self.projects if p.id == parts[4]), None)
                items = list(project.keys) if project else []
            if project is None:
                raise _error(404, f"No such project: {parts[4]}")
            return 200, self._list(query, items, ["limit", "after"], 100)
        raise _error(404, f"Invalid URL (GET {path})")

    def _window(self, q: Query, widths: tuple[str, ...], max_limit: int) -> tuple[date, date | None, int, date | None]:
        start_raw = q.one("start_time")
        if start_raw is None:
            raise _bad("start_time: Missing required parameter")
        start = _day(start_raw, "start_time")
        end_raw = q.one("end_time")
        end = _day(end_raw, "end_time") if end_raw is not None else None
        width = q.one("bucket_width") or "1d"
        if width not in widths:
            raise _bad(f"bucket_width: must be one of {', '.join(widths)}")
        if width != "1d":
            raise _bad("bucket_width: this twin keeps daily data only")
        limit = q.integer("limit", 7, 1, max_limit)
        page = q.one("page")
        return start, end, limit, token_day(page, _bad) if page else None

    def _usage_page(self, query: str) -> dict[str, Any]:
        arrays = ("group_by", "project_ids", "user_ids", "api_key_ids", "models")
        q = Query(
            query,
            ["start_time", "end_time", "bucket_width", "limit", "page", "batch", *arrays, *(f"{a}[]" for a in arrays)],
            _bad,
        )
        start, end, limit, page = self._window(q, ("1m", "1h", "1d"), 31)
        group_by = q.choices(["group_by", "group_by[]"], USAGE_GROUPS)
        projects, keys, models = (
            q.many("project_ids", "project_ids[]"),
            q.many("api_key_ids", "api_key_ids[]"),
            q.many("models", "models[]"),
        )
        days, next_day = day_buckets(start, end, limit, page)
        with self._lock:
            rows = [dict(r) for r in self.usage]
        data = []
        for day in days:
            chosen = [
                r
                for r in rows
                if r["day"] == day
                and (not projects or r["project_id"] in projects)
                and (not keys or r["api_key_id"] in keys)
                and (not models or r["model"] in models)
            ]
            results = [
                {
                    "object": "organization.usage.completions.result",
                    "input_audio_tokens": 0,
                    "output_audio_tokens": 0,
                    **{s: t[s] for s in _SUMS},
                    **{d: t[d] for d in USAGE_GROUPS if d != "service_tier"},
                }
                for t in grouped(chosen, USAGE_GROUPS, group_by, _SUMS)
            ]
            data.append(
                {
                    "object": "bucket",
                    "start_time": _unix(day),
                    "end_time": _unix(day + timedelta(days=1)),
                    "results": results,
                }
            )
        return {
            "object": "page",
            "data": data,
            "has_more": next_day is not None,
            "next_page": page_token(next_day) if next_day else None,
        }

    def _costs_page(self, query: str) -> dict[str, Any]:
        q = Query(
            query,
            [
                "start_time",
                "end_time",
                "bucket_width",
                "limit",
                "page",
                "group_by",
                "group_by[]",
                "project_ids",
                "project_ids[]",
            ],
            _bad,
        )
        start, end, limit, page = self._window(q, ("1d",), 180)
        group_by = q.choices(["group_by", "group_by[]"], COST_GROUPS)
        days, next_day = day_buckets(start, end, limit, page)
        with self._lock:
            rows = [dict(r) for r in self.costs]
        data = []
        for day in days:
            results = [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": t["value"], "currency": "usd"},
                    "line_item": t["line_item"],
                    "project_id": t["project_id"],
                }
                for t in grouped([r for r in rows if r["day"] == day], COST_GROUPS, group_by, ("value",))
            ]
            data.append(
                {
                    "object": "bucket",
                    "start_time": _unix(day),
                    "end_time": _unix(day + timedelta(days=1)),
                    "results": results,
                }
            )
        return {
            "object": "page",
            "data": data,
            "has_more": next_day is not None,
            "next_page": page_token(next_day) if next_day else None,
        }

    def _list(self, query: str, items: list[dict[str, Any]], allowed: list[str], max_limit: int) -> dict[str, Any]:
        q = Query(query, allowed, _bad)
        limit = q.integer("limit", 20, 1, max_limit)
        after = q.one("after")
        ids = [item["id"] for item in items]
        if after is not None:
            if after not in ids:
                raise _bad("after: unknown id")
            items = items[ids.index(after) + 1 :]
        chosen = items[:limit]
        return {
            "object": "list",
            "data": chosen,
            "first_id": chosen[0]["id"] if chosen else None,
            "last_id": chosen[-1]["id"] if chosen else None,
            "has_more": len(items) > limit,
        }


def _day(raw: str, name: str) -> date:
    try:
        return datetime.fromtimestamp(int(raw), UTC).date()
    except (ValueError, OverflowError, OSError):
        raise _bad(f"{name}: must be an integer (unix seconds)") from None
