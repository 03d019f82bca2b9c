"""The --pane=Tools screenshot: a function offered in the Tools tab, the model's call to it answered
with a result, and the model's final reply. Seeded through the app's own store."""

from __future__ import annotations

import json

WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}


async def seed_tools(store, account_id: str) -> None:
    from desktop_app.domain.chat import ChatParams, ReplyMetrics
    from desktop_app.domain.tools import ToolCall, tool_spec

    model = "claude-sonnet-4-5"
    params = ChatParams(tools=(tool_spec(WEATHER["name"], WEATHER["description"], WEATHER["parameters"]),))
    conv = await store.create_conversation(
        title="Weather for the weekend", account_id=account_id, model=model, params=params
    )
    await store.add_message(conv.id, role="user", content="Should I pack an umbrella for Porto this weekend?")
    call = ToolCall("toolu_01", "get_weather", json.dumps({"city": "Porto", "unit": "celsius"}))
    asking = await store.add_message(conv.id, role="assistant", content="", account_id=account_id, model=model)
    await store.update_message(
        asking.id,
        content="Let me check the forecast for Porto.",
        tool_calls=(call,),
        metrics=ReplyMetrics(ttft_s=0.52, tokens_per_s=61.0, prompt_tokens=412, completion_tokens=58, latency_s=1.4),
    )
    result = {"city": "Porto", "saturday": "showers, 9 mm", "sunday": "cloudy, dry", "high_c": 17}
    await store.add_message(conv.id, role="tool", content=json.dumps(result), tool_call_id=call.id)
    final = await store.add_message(conv.id, role="assistant", content="", account_id=account_id, model=model)
    await store.update_message(
        final.id,
        content=(
            "Yes, pack one: **Saturday** brings showers in Porto (about 9 mm), while **Sunday** stays "
            "cloudy but dry. Highs reach 17 °C, so a light jacket helps too."
        ),
        metrics=ReplyMetrics(ttft_s=0.47, tokens_per_s=64.3, prompt_tokens=538, completion_tokens=41, latency_s=1.1),
    )


async def stage_tools(app) -> None:
    """Open the Tools tab beside the parameters once the conversation is shown."""
    import asyncio

    from PySide6.QtWidgets import QTabWidget

    transcript = app.chat_pane.transcript
    for _ in range(100):  # until the whole conversation is shown
        if "a light jacket helps" in transcript.toPlainText():
            break
        await asyncio.sleep(0.05)
    tabs = next(t for t in app.chat_pane.findChildren(QTabWidget) if t.count() > 1 and t.tabText(1) == "Tools")
    tabs.setCurrentIndex(1)
    app.chat_pane.params.tools_tab.list.setCurrentRow(0)  # its definition in the form below
