"""Conversations with every kind of thing ModelDesk stores, built through the store's own API, for
the export and import tests."""

from __future__ import annotations

import io

from desktop_app.domain.attachments import DEFAULT_IMAGE_LIMITS
from desktop_app.domain.chat import ChatParams, ReplyMetrics
from desktop_app.domain.compare import CompareColumn, CompareSetup
from desktop_app.domain.conversations import MessageStatus
from desktop_app.domain.sent_requests import SentRequest
from desktop_app.domain.tools import ToolCall
from desktop_app.services.chat.attachments import AttachmentStore
from desktop_app.services.chat.conversations import ConversationStore


def png(size: tuple[int, int] = (8, 6), colour: str = "red") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


async def rich_conversation(store: ConversationStore, attachments: AttachmentStore) -> int:
    """A chat with a picture and a text file, a reply with reasoning, metrics, a tool call and its
    result, a second version of the reply (with the request it was sent with), and a failed reply."""
    picture = await attachments.add_bytes(png(), "dot.png", DEFAULT_IMAGE_LIMITS)
    notes = await attachments.add_bytes("Ærøskøbing, 3 days\n".encode(), "notes.txt", DEFAULT_IMAGE_LIMITS)
    params = ChatParams(system_prompt="Be brief.", temperature=0.3, stop=("END",), preset="Brief")
    c = await store.create_conversation(title="Trip plan ✈", account_id="acct-1", model="m-large", params=params)
    user = await store.add_message(c.id, role="user", content="Plan a trip", attachments=(picture, notes))
    reply = await store.add_message(c.id, role="assistant", content="", account_id="acct-1", model="m-large")
    await store.update_message(
        reply.id,
        content="Let me look at the weather.",
        reasoning="The user wants a plan.",
        metrics=ReplyMetrics(ttft_s=0.25, tokens_per_s=41.5, prompt_tokens=12, completion_tokens=30, cost_usd=0.0001),
        tool_calls=(ToolCall("call_1", "weather", '{"city": "Ærøskøbing"}'),),
    )
    await store.add_message(c.id, role="tool", content='{"sky": "clear"}', tool_call_id="call_1")
    await store.add_message(c.id, role="assistant", content="Day 1: the harbour.", model="m-large")
    other = await store.add_message(c.id, role="assistant", content="", parent_id=user.id, model="m-small")
    sent = SentRequest(
        account_id="acct-1",
        provider_id="openai",
        base_url="http://127.0.0.1:9/v1",
        api_base=None,
        litellm_model="openai/m-small",
        model="m-small",
        messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Plan a trip"}),
        params={"temperature": 0.3},
    )
    await store.update_message(other.id, content="A shorter plan.", request=sent)
    failed = await store.add_message(c.id, role="user", content="And the ferry?", parent_id=other.id)
    bad = await store.add_message(c.id, role="assistant", content="", parent_id=failed.id, model="m-small")
    await store.update_message(bad.id, status=MessageStatus.FAILED, error="The server refused the key.")
    await store.show_version(reply.id)  # the branch shown is the first reply's
    return c.id


async def comparison(store: ConversationStore) -> int:
    """Two columns, one turn, the second column's reply voted for."""
    setup = CompareSetup(
        columns=(
            CompareColumn(account_id="a", model="x-1"),
            CompareColumn(account_id="b", model="y-2", overrides={"temperature": 1.0}),
        ),
        blind=True,
    )
    c = await store.create_conversation(title="Which is better", compare=setup)
    await store.add_message(c.id, role="user", content="Name a colour.")
    await store.add_message(c.id, role="assistant", content="Blue.", lane=1, account_id="a", model="x-1")
    picked = await store.add_message(c.id, role="assistant", content="Green.", lane=2, account_id="b", model="y-2")
    await store.set_vote(picked.id, 1)
    return c.id
