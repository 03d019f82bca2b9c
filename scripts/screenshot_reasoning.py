"""The --pane=Reasoning screenshot: a reply whose reasoning fold is open, and replies asked for as
JSON with their checks in the footer (one shown pretty). Seeded through the app's own store."""

from __future__ import annotations

import json

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "languages": {"type": "array"}},
    "required": ["name", "age"],
}
REASONING = (
    "The user wants the contact's details pulled out of the note. The name is plainly Ada Lovelace; "
    "the age is given as a word, so I should turn thirty-six into a number. Languages: English and French."
)


async def seed_reasoning(store, account_id: str) -> None:
    from desktop_app.domain.chat import ReplyMetrics
    from desktop_app.domain.sent_requests import SentRequest

    def request(response_format: dict | None) -> SentRequest:
        return SentRequest(
            account_id=account_id, provider_id="anthropic", base_url="https://api.anthropic.com", api_base=None,
            litellm_model="anthropic/claude-sonnet-4-5", model="claude-sonnet-4-5",
            messages=({"role": "user", "content": "…"},),
            params={"response_format": response_format} if response_format else {},
        )  # fmt: skip

    conv = await store.create_conversation(
        title="A contact out of a note", account_id=account_id, model="claude-sonnet-4-5"
    )

    async def turn(question: str, answer: str, metrics: ReplyMetrics, **extra) -> None:
        await store.add_message(conv.id, role="user", content=question)
        reply = await store.add_message(
            conv.id, role="assistant", content="", account_id=account_id, model="claude-sonnet-4-5"
        )
        await store.update_message(reply.id, content=answer, metrics=metrics, **extra)

    schema_format = {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA}}
    base = {"ttft_s": 0.41, "tokens_per_s": 58.2, "prompt_tokens": 96, "latency_s": 2.4}
    await turn(
        "Who is the contact in this note? “Met Ada Lovelace (thirty-six), speaks English and French.”",
        "The contact is **Ada Lovelace**, aged 36, who speaks English and French.",
        ReplyMetrics(completion_tokens=88, reasoning_tokens=61, thinking_s=1.8, **base),
        reasoning=REASONING,
        request=request(None),
    )
    person = {"name": "Ada Lovelace", "age": 36, "languages": ["English", "French"]}
    await turn(
        "Now as JSON, please.",
        json.dumps(person),
        ReplyMetrics(completion_tokens=31, **base),
        request=request(schema_format),
    )
    await turn(
        "And the age as written?",
        json.dumps({**person, "age": "thirty-six"}),
        ReplyMetrics(completion_tokens=33, **base),
        request=request(schema_format),
    )


async def stage_reasoning(app) -> None:
    """Open the first reply's reasoning and show the second reply's JSON pretty."""
    import asyncio

    from PySide6.QtCore import QUrl

    transcript = app.chat_pane.transcript
    for _ in range(100):  # until the whole conversation is shown
        if "Pretty view" in transcript.toPlainText():
            break
        await asyncio.sleep(0.05)
    transcript.anchorClicked.emit(QUrl("thinking:0"))
    transcript.anchorClicked.emit(QUrl("json:0"))
