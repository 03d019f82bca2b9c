"""LLMService over the real LiteLLM engine, against the loopback fault server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import (
    ChatMessage,
    ChatParams,
    Failed,
    Finished,
    Notice,
    ResponseFormat,
    ResponseHeaders,
    Started,
    StreamEvent,
    TextDelta,
    UsageReport,
)
from desktop_app.domain.errors import (
    AuthFailed,
    BadRequest,
    ContextTooLong,
    DomainError,
    MalformedResponse,
    ModelNotFound,
    NoKey,
    PermissionDenied,
    RateLimited,
    ServerError,
    TimedOut,
    Unreachable,
)
from desktop_app.services.chat.llm import LLMService, _local_pricing, _Request, _split_supported
from desktop_app.services.litellm_engine import LiteLLMEngine, estimate_tokens
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_fault import FAST_TOKENS, FaultServer

KEY = "sk-test"
HELLO = [ChatMessage("user", "Say hello to the test suite")]
# The fault server counts a prompt as its words + 4 per message + 3: 6 + 4 + 3.
HELLO_PROMPT_TOKENS = 13


def stream(
    llm: LLMService,
    account: Account,
    model: str,
    *,
    messages: Sequence[ChatMessage] = HELLO,
    params: ChatParams | None = None,
    api_key: str | None = KEY,
    timeout_s: float = 30.0,
) -> AsyncIterator[StreamEvent]:
    return llm.stream_chat(
        account=account,
        api_key=api_key,
        model=model,
        messages=messages,
        params=params or ChatParams(),
        timeout_s=timeout_s,
    )


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def text_of(events: Sequence[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_keyless(error: DomainError) -> None:
    for shown in (str(error), error.message, error.action, repr(error)):
        assert KEY not in shown


# --- a good reply ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_reply_is_started_streamed_counted_and_finished(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    events = await collect(stream(llm, account, "ok"))

    assert isinstance(events[0], Started)
    assert (events[0].model, events[0].dropped_params) == ("ok", ())
    assert isinstance(events[-1], Finished)
    assert events[-2] == UsageReport(prompt_tokens=HELLO_PROMPT_TOKENS, completion_tokens=40)
    assert isinstance(events[1], ResponseHeaders)  # the provider's headers, as soon as they are known
    assert events[1].headers["llm_provider-x-request-id"]
    middle = events[2:-2]
    assert middle and all(isinstance(e, TextDelta) for e in middle)
    assert text_of(events) == "".join(f"word{i} " for i in range(40))

    finished = events[-1]
    assert finished.finish_reason == "stop"
    metrics = finished.metrics
    assert metrics.ttft_s is not None and metrics.ttft_s > 0
    assert metrics.tokens_per_s is not None and metrics.tokens_per_s > 0
    assert (metrics.prompt_tokens, metrics.completion_tokens) == (HELLO_PROMPT_TOKENS, 40)
    assert metrics.latency_s is not None and metrics.latency_s >= metrics.ttft_s
    assert metrics.cost_usd is None  # a local/compatible server has no price

    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    assert body["model"] == "ok"  # LiteLLM's "openai/" routing prefix is not sent
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "Say hello to the test suite"}]


@pytest.mark.asyncio
async def test_a_server_that_ignores_include_usage_gets_litellms_token_estimate(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    import tiktoken

    events = await collect(stream(llm, account, "no-usage"))

    (request,) = server.requests
    assert request.json()["stream_options"] == {"include_usage": True}  # asked, and not answered
    usage = next(e for e in events if isinstance(e, UsageReport))
    # cl100k_base, counted here independently: the reply exactly, the prompt plus the per-message
    # overhead OpenAI documents for chat formatting (a few tokens).
    encoding = tiktoken.get_encoding("cl100k_base")
    assert usage.completion_tokens == len(encoding.encode(text_of(events)))
    prompt_text = len(encoding.encode("user")) + len(encoding.encode(HELLO[0].content))
    assert prompt_text < usage.prompt_tokens <= prompt_text + 8
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert (finished.metrics.prompt_tokens, finished.metrics.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )


def test_a_reply_whose_server_reports_usage_loads_no_tokenizer(tmp_path) -> None:
    """tiktoken's table costs ~30 MB for good: only a server without usage makes it load."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import asyncio, sys
        from desktop_app.domain.accounts import Account
        from desktop_app.domain.chat import ChatMessage, ChatParams, UsageReport
        from desktop_app.services.chat.llm import LLMService
        from desktop_app.services.litellm_engine import LiteLLMEngine
        from tests.servers.openai_fault import FaultServer

        async def main():
            engine = LiteLLMEngine()
            with FaultServer() as server:
                account = Account(provider_id="openai_compatible", label="lab", base_url=server.base_url)
                events = [e async for e in LLMService(engine=engine).stream_chat(
                    account=account, api_key="sk-test", model="ok",
                    messages=[ChatMessage("user", "Say hello")], params=ChatParams())]
            engine.stop()
            registry = sys.modules.get("tiktoken.registry")
            print(any(isinstance(e, UsageReport) for e in events), sorted(getattr(registry, "ENCODINGS", {})))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True []"


@pytest.mark.asyncio
async def test_a_fast_burst_is_coalesced_into_fewer_events_with_the_exact_text(
    llm: LLMService, account: Account
) -> None:
    events = await collect(stream(llm, account, "fast-20000"))

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) < 20000
    assert text_of(events) == "".join(FAST_TOKENS[i % len(FAST_TOKENS)] for i in range(20000))
    assert isinstance(events[-1], Finished)
    assert events[-1].metrics.completion_tokens == 20000


@pytest.mark.asyncio
async def test_the_parameters_reach_the_server_and_a_length_stop_is_reported(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    params = ChatParams(
        temperature=0.4,
        top_p=0.9,
        max_tokens=5,
        stop=["zzz"],
        seed=11,
        response_format=ResponseFormat.JSON_SCHEMA,
        json_schema='{"type": "object", "properties": {"a": {"type": "string"}}}',
    )
    events = await collect(stream(llm, account, "ok", params=params))

    assert isinstance(events[0], Started)
    assert (events[0].model, events[0].dropped_params) == ("ok", ())
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "length"
    assert text_of(events) == "word0 word1 word2 word3 word4 "
    body = server.requests[-1].json()
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.4, 0.9, 5, 11)
    assert body["stop"] == ["zzz"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    # What is recorded with the reply ("View as code") is what went out.
    sent = events[0].request
    assert sent is not None and {k: body[k] for k in sent.params} == sent.params
    assert set(body) - set(sent.params) == {"model", "messages", "stream", "stream_options"}


@pytest.mark.asyncio
async def test_more_stop_sequences_than_can_be_sent_are_cut_and_the_user_is_told(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    stops = [f"STOP{i}" for i in range(1000)]
    events = await collect(stream(llm, account, "ok", params=ChatParams(stop=stops)))

    assert isinstance(events[0], Started)
    assert (events[0].model, events[0].dropped_params) == ("ok", ())
    assert events[1] == Notice("Sent only the first 4 of the 1,000 stop sequences: no more than 4 can be sent.")
    assert isinstance(events[-1], Finished)
    assert server.requests[-1].json()["stop"] == stops[:4]
    assert events[0].request is not None and events[0].request.params["stop"] == stops[:4]

    few = await collect(stream(llm, account, "ok", params=ChatParams(stop=stops[:4])))
    assert not any(isinstance(e, Notice) for e in few)
    assert server.requests[-1].json()["stop"] == stops[:4]


@pytest.mark.asyncio
async def test_a_reply_with_a_bidi_override_arrives_without_it(llm: LLMService, account: Account) -> None:
    events = await collect(stream(llm, account, "fault-bidi"))

    assert isinstance(events[-1], Finished)
    assert text_of(events) == "Open gpj.exe now"  # not shown as "Open won exe.jpg"


@pytest.mark.asyncio
async def test_the_system_prompt_is_sent_first_and_stale_system_messages_are_not(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    history = [
        ChatMessage("system", "an old prompt the panel no longer shows"),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "Again"),
    ]
    await collect(stream(llm, account, "ok", messages=history, params=ChatParams(system_prompt="Answer in one word.")))
    await collect(stream(llm, account, "ok", messages=history, params=ChatParams(system_prompt="  ")))

    with_prompt, blank_prompt = (r.json()["messages"] for r in server.requests)
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Again"},
    ]
    assert with_prompt == [{"role": "system", "content": "Answer in one word."}, *conversation]
    assert blank_prompt == conversation


async def _engine_idle(engine: LiteLLMEngine) -> None:
    """Wait until every task LiteLLM left on the engine loop (its record of a finished stream) is done."""

    async def others_done() -> None:
        me = asyncio.current_task()
        while others := [task for task in asyncio.all_tasks() if task is not me]:
            await asyncio.wait(others)

    await asyncio.wrap_future(engine.submit(others_done()))


@pytest.mark.asyncio
async def test_an_ollama_reply_asks_the_server_for_the_chat_and_nothing_else(
    llm: LLMService, engine: LiteLLMEngine
) -> None:
    """LiteLLM's record of a finished stream would ask Ollama what an unlisted model is, blocking the
    engine loop (every account's stream) until that server answers; twice, the chat alone is sent."""
    with OllamaServer(installed=("gemma3:4b",)) as ollama:
        local = Account(provider_id="ollama", label="Local Ollama", base_url=ollama.base_url)
        for _ in range(2):
            events = await collect(stream(llm, local, "gemma3:4b", api_key=None))
            assert isinstance(events[-1], Finished) and text_of(events)
            await _engine_idle(engine)

        assert [r.path for r in ollama.requests] == ["/api/chat", "/api/chat"]


# --- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "error_class"),
    [
        ("fault-401", AuthFailed),
        ("fault-403", PermissionDenied),
        ("fault-404", ModelNotFound),
        ("fault-429", RateLimited),
        ("fault-500", ServerError),
        ("fault-context", ContextTooLong),
        ("fault-cut", Unreachable),
        ("fault-malformed", MalformedResponse),
        ("fault-stall", TimedOut),
    ],
)
@pytest.mark.asyncio
async def test_each_fault_ends_in_one_typed_failure_without_the_key(
    llm: LLMService, account: Account, model: str, error_class: type[DomainError]
) -> None:
    timeout_s = 1.0 if model == "fault-stall" else 30.0
    events = await collect(stream(llm, account, model, timeout_s=timeout_s))

    assert isinstance(events[0], Started)
    assert isinstance(events[-1], Failed)
    assert not any(isinstance(e, (Finished, Failed)) for e in events[:-1])
    error = events[-1].error
    assert type(error) is error_class, f"{model}: {error!r}"
    assert error.message.endswith(".") and "\n" not in error.message
    assert error.action
    assert_keyless(error)
    assert events[-1].metrics.latency_s is not None

    if model == "fault-429":
        assert error.retry_after == 7
    if model == "fault-500":
        assert error.status == 500
    if model == "fault-cut":
        # Everything that arrived before the cut was handed on before the failure.
        assert text_of(events) == "".join(f"part{i} " for i in range(10))
        assert error.url == account.effective_base_url
    if model == "fault-stall":
        assert text_of(events) == "stall0 stall1 stall2 "
    if model == "fault-malformed":
        assert "good0 good1 good2 good3 good4 ".startswith(text_of(events))


@pytest.mark.asyncio
async def test_a_port_nobody_listens_on_is_unreachable(llm: LLMService) -> None:
    # Bound but not listening: connections are refused, and no other test can take the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        account = Account(provider_id="openai_compatible", label="Nobody", base_url=f"http://127.0.0.1:{port}/v1")
        events = await collect(stream(llm, account, "ok"))

    assert isinstance(events[-1], Failed)
    error = events[-1].error
    assert isinstance(error, Unreachable)
    assert error.url == f"http://127.0.0.1:{port}/v1"
    assert f"127.0.0.1:{port}" in error.message
    assert_keyless(error)
    assert text_of(events) == ""


@pytest.mark.asyncio
async def test_closing_the_stream_early_disconnects_from_the_server(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    events = stream(llm, account, "slow")
    seen: list[StreamEvent] = []
    async for event in events:
        seen.append(event)
        if sum(isinstance(e, TextDelta) for e in seen) >= 3:
            break
    await events.aclose()

    assert await asyncio.to_thread(server.client_disconnected.wait, 5)
    assert server.disconnects == 1
    assert not any(isinstance(e, (Finished, Failed)) for e in seen)
    assert text_of(seen).startswith("word0 ")


@pytest.mark.asyncio
async def test_an_invalid_json_schema_fails_before_any_request(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    params = ChatParams(response_format=ResponseFormat.JSON_SCHEMA, json_schema='{"type": ')
    events = await collect(stream(llm, account, "ok", params=params))

    assert len(events) == 1 and isinstance(events[0], Failed)
    assert isinstance(events[0].error, BadRequest)
    assert "JSON schema" in events[0].error.message and events[0].error.action
    assert server.requests == []


@pytest.mark.parametrize("api_key", [None, ""])
@pytest.mark.asyncio
async def test_a_provider_that_needs_a_key_fails_without_one_before_any_request(
    llm: LLMService, server: FaultServer, api_key: str | None
) -> None:
    cloud = Account(provider_id="openai", label="Cloud", base_url=server.base_url)
    events = await collect(stream(llm, cloud, "ok", api_key=api_key))

    assert len(events) == 1 and isinstance(events[0], Failed)
    assert isinstance(events[0].error, NoKey)
    assert "Cloud" in events[0].error.message and events[0].error.action
    assert server.requests == []


# --- parameters a provider does not take -----------------------------------------------------------


def test_anthropic_drops_seed_and_keeps_temperature(engine: LiteLLMEngine) -> None:
    litellm = engine.wait_loaded(120)
    model = "claude-sonnet-4-20250514"
    # What LiteLLM itself says (checked against the installed version): Anthropic's Messages API
    # has temperature, top_p, stop and max_tokens but no seed, so seed must be left out and named.
    supported = litellm.get_supported_openai_params(model=model, custom_llm_provider="anthropic")
    assert "temperature" in supported and "seed" not in supported

    request = _Request(
        account=Account(provider_id="anthropic", label="Claude"),
        api_key=None,
        model=model,
        timeout_s=5.0,
        messages=[],
        options=ChatParams(temperature=0.2, top_p=0.5, max_tokens=64, stop=["END"], seed=7).request_options(),
    )
    kept, dropped = _split_supported(litellm, request)
    assert kept == {"temperature": 0.2, "top_p": 0.5, "max_tokens": 64, "stop": ["END"]}
    assert dropped == ("seed",)


def test_an_openai_compatible_server_keeps_every_parameter(engine: LiteLLMEngine) -> None:
    litellm = engine.wait_loaded(120)
    params = ChatParams(temperature=0.2, seed=7, response_format=ResponseFormat.JSON_OBJECT)
    options = params.request_options()
    request = _Request(
        account=Account(provider_id="openai_compatible", label="Local"),
        api_key=None,
        model="some-local-model",
        timeout_s=5.0,
        messages=[],
        options=options,
    )
    assert _split_supported(litellm, request) == (options, ())


@pytest.mark.asyncio
async def test_chat_with_an_embedding_model_gives_ollamas_reason(llm: LLMService) -> None:
    from tests.servers.ollama_server import OllamaServer

    with OllamaServer(installed=["nomic-embed-text"]) as ollama:
        account = Account(provider_id="ollama", label="Local Ollama", base_url=ollama.base_url)
        events = await collect(stream(llm, account, "nomic-embed-text:latest", api_key=None))

    assert isinstance(events[-1], Failed)
    error = events[-1].error
    assert isinstance(error, BadRequest)
    assert error.message == f"127.0.0.1:{ollama.port} says nomic-embed-text:latest does not support chat."
    assert error.action == "Pick a chat model; an embedding model only turns text into vectors."


@pytest.mark.asyncio
async def test_after_a_reply_the_tokenizers_keep_one_copy_and_count_as_before(
    llm: LLMService, account: Account, server: FaultServer
) -> None:
    # A server that reports no usage makes ModelDesk count (tiktoken's cl100k_base); LiteLLM parses
    # the Anthropic tokenizer at import. The copies only pickling or nothing read are let go.
    events = await collect(stream(llm, account, "no-usage"))
    assert isinstance(events[-1], Finished)
    litellm = await llm.engine.litellm()

    def inspect() -> tuple:
        import litellm.utils
        import tiktoken.registry

        encoding = tiktoken.registry.ENCODINGS["cl100k_base"]
        return (
            litellm.utils.json_data,
            encoding._mergeable_ranks,
            encoding.n_vocab,
            estimate_tokens(litellm, "gpt-4o-mini", text="Hello from ModelDesk"),
            estimate_tokens(litellm, "claude-3-haiku-20240307", text="Hello from ModelDesk"),
        )

    async def on_engine() -> tuple:
        return inspect()

    parsed_tree, python_ranks, vocabulary, openai_count, anthropic_count = await asyncio.wrap_future(
        llm.engine.submit(on_engine())
    )
    assert parsed_tree is None and python_ranks is None
    assert vocabulary == 100277
    assert openai_count == 4 and anthropic_count > 0  # "Hello", " from", " Model", "Desk"
    assert litellm.utils.claude_json_str  # what the Anthropic tokenizer is built from stays


def test_litellm_takes_a_local_servers_reply_as_free_rather_than_looking_its_model_up(
    engine: LiteLLMEngine, server: FaultServer
) -> None:
    # LiteLLM prices each stream as it returns it. A model its map does not list (a local one) it
    # first looks up under every generalisation of the name, and still has no price; given the
    # local server's free prices, it has one at once. Cloud accounts give none of their own.
    litellm = engine.wait_loaded(120)
    local = Account(provider_id="openai_compatible", label="Local", base_url=server.base_url)
    assert _local_pricing(local) == {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
    assert _local_pricing(Account(provider_id="anthropic", label="Cloud")) == {}

    async def cost_on_return(**prices: float) -> object:
        stream = await litellm.acompletion(
            model="openai/ok",
            messages=[{"role": "user", "content": "hi"}],
            api_base=server.base_url,
            api_key=KEY,
            stream=True,
            max_retries=0,
            **prices,
        )
        try:
            return stream._hidden_params.get("response_cost")
        finally:
            await stream.aclose()

    assert engine.submit(cost_on_return()).result(30) is None
    assert engine.submit(cost_on_return(**_local_pricing(local))).result(30) == 0.0
    assert server.requests[-1].json().keys() == server.requests[-2].json().keys()  # no price was sent
