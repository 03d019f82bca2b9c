"""--pane=Search for scripts/screenshot.py: a pinned, tagged history searched, a hit opened at its match."""

from __future__ import annotations


async def seed_search(store, account_id: str) -> None:
    notes = await store.create_conversation(title="GGUF quantisation notes", account_id=account_id, model="gemma")
    await store.add_message(notes.id, role="user", content="Which GGUF quantisation keeps quality on a 7B model?")
    await store.add_message(
        notes.id,
        role="assistant",
        content="Q4_K_M is the usual balance; Q5_K_M if memory allows. A GGUF file records its type"
        " in general.file_type.",
        account_id=account_id,
        model="gemma",
    )
    await store.set_pinned(notes.id, True)
    await store.set_tags(notes.id, ["llama.cpp", "models"])


async def stage_search(app) -> None:
    pane = app.chat_pane
    await pane.load_conversations()
    panel = pane.search_panel
    panel.filters_button.setChecked(True)
    await panel.reload_choices()
    panel.field.setText("gguf file")
    await panel.search()
    hit = panel.results.hit_at(1)
    panel.view.setCurrentIndex(panel.results.index(1))
    await pane.open_hit(panel.query(), hit)
