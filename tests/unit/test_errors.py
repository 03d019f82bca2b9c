"""map_error on real LiteLLM/httpx exception objects: the right class, one sentence, no key."""

from __future__ import annotations

import json

import httpx
import litellm
import pytest

from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    ContextTooLong,
    DomainError,
    MalformedResponse,
    ModelNotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.services.errors import map_error

KEY = "sk-test-0123456789abcdefLEAK"
BASE_URL = "https://api.example.com/v1"
HOST = "api.example.com"
LABEL = "Work"
MODEL = "gpt-4o-mini"
CHAT_URL = f"{BASE_URL}/chat/completions"


def response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, json={"error": {"message": f"key {KEY}"}}, request=httpx.Request("POST", CHAT_URL)
    )


def raised(outer: Exception, cause: Exception) -> Exception:
    """`outer` as Python leaves it after `raise outer from cause` inside `except cause`."""

    def chain() -> None:
        try:
            raise cause
        except type(cause) as inner:
            raise outer from inner

    with pytest.raises(type(outer)) as info:
        chain()
    return info.value


def mapped(exc: BaseException) -> DomainError:
    error = map_error(exc, account_label=LABEL, model=MODEL, base_url=BASE_URL)
    # What every mapped error owes the user, whatever it is.
    assert error.message.endswith("."), error.message
    assert "\n" not in error.message and "\n" not in error.action
    assert error.action
    for shown in (str(error), error.message, error.action, repr(error)):
        assert KEY not in shown
        assert "Traceback" not in shown
    return error


def test_authentication_error_is_auth_failed() -> None:
    exc = litellm.AuthenticationError(
        message=f"Incorrect API key provided: {KEY}", llm_provider="openai", model=MODEL, response=response(401)
    )
    assert KEY in str(exc)  # the precondition that makes the next line mean something
    error = mapped(exc)
    assert type(error) is AuthFailed
    assert LABEL in error.message


def test_rate_limit_with_retry_after_says_when_to_try_again() -> None:
    exc = litellm.RateLimitError(
        message=f"Rate limit reached for key {KEY}",
        llm_provider="openai",
        model=MODEL,
        response=response(429, {"retry-after": "7"}),
    )
    error = mapped(exc)
    assert type(error) is RateLimited
    assert error.retry_after == 7
    assert "Try again in 7 s." in error.message


def test_rate_limit_with_an_http_date_retry_after_gives_no_number() -> None:
    exc = litellm.RateLimitError(
        message="slow down",
        llm_provider="openai",
        model=MODEL,
        response=response(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}),
    )
    error = mapped(exc)
    assert type(error) is RateLimited
    assert error.retry_after is None
    assert "Try again" not in error.message


def test_context_window_exceeded_is_context_too_long() -> None:
    exc = litellm.ContextWindowExceededError(
        message=f"This model's maximum context length is 4096 tokens ({KEY})",
        model=MODEL,
        llm_provider="openai",
        response=response(400),
    )
    error = mapped(exc)
    assert type(error) is ContextTooLong
    assert MODEL in error.message


def test_timeout_is_timed_out() -> None:
    exc = litellm.Timeout(message=f"Request timed out (key {KEY})", model=MODEL, llm_provider="openai")
    error = mapped(exc)
    assert type(error) is TimedOut
    assert HOST in error.message


def test_a_refused_connection_is_unreachable_with_the_url() -> None:
    connect = httpx.ConnectError("All connection attempts failed", request=httpx.Request("POST", CHAT_URL))
    exc = raised(
        litellm.APIConnectionError(message=f"Connection error. {KEY}", llm_provider="openai", model=MODEL), connect
    )
    error = mapped(exc)
    assert type(error) is Unreachable
    assert error.url == BASE_URL
    assert HOST in error.message


def test_a_connection_error_without_an_http_answer_is_not_called_a_server_error() -> None:
    # LiteLLM gives every APIConnectionError status_code 500 although no HTTP answer came, e.g.
    # when a transport error it does not know is wrapped without a cause.
    exc = litellm.APIConnectionError(message="Connection error.", llm_provider="openai", model=MODEL)
    assert exc.status_code == 500
    error = mapped(exc)
    assert type(error) is Unreachable
    assert "HTTP 500" not in error.message


def test_a_cut_stream_is_unreachable_and_keeps_the_partial_text() -> None:
    cut = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    exc = raised(litellm.APIConnectionError(message="stream ended", llm_provider="openai", model=MODEL), cut)
    error = mapped(exc)
    assert type(error) is Unreachable
    assert "cut" in error.message and "partial" in error.action


def test_internal_server_error_is_server_error_with_status() -> None:
    exc = litellm.InternalServerError(
        message=f"The server had an error ({KEY})", llm_provider="openai", model=MODEL, response=response(500)
    )
    error = mapped(exc)
    assert type(error) is ServerError
    assert error.status == 500
    assert "HTTP 500" in error.message


def test_service_unavailable_is_server_error() -> None:
    exc = litellm.ServiceUnavailableError(message="overloaded", llm_provider="openai", model=MODEL)
    error = mapped(exc)
    assert type(error) is ServerError
    assert error.status == 503


def test_a_json_decode_error_in_the_chain_is_malformed_response() -> None:
    try:
        json.loads('{"id": "broken", "choices": [')
    except json.JSONDecodeError as decode:
        cause = decode
    exc = raised(
        litellm.APIError(status_code=500, message=f"Error parsing chunk ({KEY})", llm_provider="openai", model=MODEL),
        cause,
    )
    error = mapped(exc)
    assert type(error) is MalformedResponse
    assert HOST in error.message


def test_litellm_repeated_chunk_guard_is_malformed_response() -> None:
    # The exact exception LiteLLM's stream wrapper raises (raise_on_model_repetition).
    exc = litellm.InternalServerError(
        message="The model is repeating the same chunk = t0 t0 t0.", model="", llm_provider=""
    )
    error = mapped(exc)
    assert type(error) is MalformedResponse
    assert MODEL in error.message


def test_not_found_is_model_not_found() -> None:
    exc = litellm.NotFoundError(
        message=f"The model `{MODEL}` does not exist", model=MODEL, llm_provider="openai", response=response(404)
    )
    error = mapped(exc)
    assert type(error) is ModelNotFound
    assert MODEL in error.message and LABEL in error.message


def test_permission_denied_is_permission_denied() -> None:
    exc = litellm.PermissionDeniedError(
        message=f"not allowed for {KEY}", llm_provider="openai", model=MODEL, response=response(403)
    )
    assert type(mapped(exc)) is PermissionDenied


def test_bad_request_is_bad_request() -> None:
    exc = litellm.BadRequestError(
        message=f"Unrecognized request argument supplied: foo ({KEY})",
        model=MODEL,
        llm_provider="openai",
        response=response(400),
    )
    error = mapped(exc)
    assert type(error) is BadRequest
    assert HOST in error.message


def test_an_unknown_exception_is_a_server_error_naming_only_its_type() -> None:
    error = mapped(RuntimeError(f"something odd with {KEY}"))
    assert type(error) is ServerError
    assert "RuntimeError" in error.message


def test_a_domain_error_passes_through_unchanged() -> None:
    original = TimedOut("Already said.", "Already advised.")
    assert map_error(original, account_label=LABEL, model=MODEL, base_url=BASE_URL) is original


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 502])
def test_a_bare_status_is_enough_to_classify(status: int) -> None:
    # An openai/httpx-style error LiteLLM did not wrap: only `status_code` tells what happened.
    class UpstreamError(Exception):
        status_code = status

    error = mapped(UpstreamError(f"HTTP {status} for {KEY}"))
    expected = {
        401: AuthFailed,
        403: PermissionDenied,
        404: ModelNotFound,
        429: RateLimited,
        500: ServerError,
        502: ServerError,
    }[status]
    assert type(error) is expected


def test_a_password_in_the_base_url_never_reaches_the_sentence():
    import httpx

    from desktop_app.services.errors import map_error

    exc = httpx.ConnectError("refused")
    error = map_error(exc, account_label="A", model="m", base_url="http://user:hunter2@127.0.0.1:9/v1")
    assert "hunter2" not in error.message and "user" not in error.message
    assert "127.0.0.1:9" in error.message
