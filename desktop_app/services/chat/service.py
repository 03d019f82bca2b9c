"""A conversation turn: persist the user's message, stream the reply, keep the partial text safe.

Text that arrived is written to SQLite at most `save_interval_s` after it arrived, by a timer of
its own (a stream that pauses does not hold it back), so a crash loses at most that much; Stop,
failure and success each leave the message with its status.
A save the store refuses (locked, disk full...) never cuts the stream: the reply is held in memory
(`unsaved_problem` says why) and written by the next operation or `flush_unsaved()`. Still held
at quit, it goes to a file of its own (`spill_unsaved`), written to the store at the next start
(`restore_spilled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from desktop_app.domain.attachments import AttachedFile, Attachment, AttachmentKind, AttachmentRefused, image_limits
from desktop_app.domain.chat import (
    ChatMessage,
    ChatParams,
    Failed,
    Finished,
    ReasoningDelta,
    ReplyMetrics,
    Started,
    StreamEvent,
    TextDelta,
    answered_calls_only,
)
from desktop_app.domain.compare import CompareColumn
from desktop_app.domain.conversations import (
    SENT_AS_CONTEXT,
    Conversation,
    InterruptedReply,
    MessageStatus,
    StoredMessage,
)
from desktop_app.domain.errors import DomainError, StorageFailed
from desktop_app.domain.models import ModelInfo
from desktop_app.domain.settings import Settings
from desktop_app.domain.tools import ToolCalls
from desktop_app.domain.usage import UsageRecord
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.services.chat import preflight
from desktop_app.services.chat.attachments import AttachmentStore, pdf_text
from desktop_app.services.chat.conversations import ConversationStore
from desktop_app.services.chat.dispatch import Dispatcher
from desktop_app.services.chat.reply_saving import PartialSaver, changes_from_json, changes_to_json
from desktop_app.services.chat.titles import Titles, first_title
from desktop_app.services.paths import move_aside, write_atomically

DEFAULT_TITLE = "New conversation"
log = logging.getLogger(__name__)


class ChatService:
    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        store: ConversationStore,
        save_interval_s: float = 0.5,
        spill_file: Path | None = None,
        draft_file: Path | None = None,
        attachments: AttachmentStore | None = None,
        model_info: Callable[[str, str], Awaitable[ModelInfo]] | None = None,
        titles: Titles | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self.titles = titles  # automatic titles after a first reply (None: never)
        # What LiteLLM knows of a model of an account or pool: a model it says cannot see is refused images.
        self._model_info = model_info
        self._attachments = attachments  # where attached files are kept (None: nothing can be attached)
        self._pdf_texts: dict[str, str] = {}  # digest -> the text of a PDF, read once a session
        self._store = store
        self._save_interval_s = save_interval_s
        self._spill_file = spill_file  # replies still held at quit, for the next start
        self._spill_pending = False  # its replies are held here and not written yet
        self._draft_file = draft_file  # the composer's unsent text, kept across a quit
        self._unsaved: dict[int, dict[str, Any]] = {}  # message id -> the changes the store refused
        self.unsaved_problem: StorageFailed | None = None  # why they are held

    @property
    def store(self) -> ConversationStore:
        return self._store

    async def attach(
        self, *, path: Path | None = None, data: bytes | None = None, name: str = "", provider_id: str = ""
    ) -> Attachment:
        """Prepare a file (at `path`, or pasted `data` called `name`) for a message to `provider_id`
        and keep it; AttachmentRefused (one sentence) for what cannot be attached."""
        if self._attachments is None:
            raise AttachmentRefused("Files cannot be attached in this session: it keeps no attachments folder.")
        limits = image_limits(provider_id)
        if path is not None:
            return await self._attachments.add_file(path, limits)
        return await self._attachments.add_bytes(data or b"", name, limits)

    async def fit(self, attachments: tuple[Attachment, ...], *provider_ids: str) -> tuple[Attachment, ...]:
        """At Send: the files attached for one provider, as the providers the message now goes to
        take them (an image attached for a roomier one is scaled again; one within their limits is
        left as it is). AttachmentRefused when a file is no longer on disk."""
        if not attachments:
            return attachments
        if self._attachments is None:
            raise AttachmentRefused("This message has attached files, and this session cannot read them.")
        await self._attachments.check(attachments)
        limits = image_limits(*provider_ids)
        return tuple([await self._attachments.fit(a, limits) for a in attachments])

    def attachment_path(self, attachment: Attachment) -> Path:
        """Where the attached file is kept."""
        if self._attachments is None:
            raise AttachmentRefused("This session keeps no attachments folder.")
        return self._attachments.path_of(attachment)

    @property
    def attachments_dir(self) -> str | None:
        """Where attached files are kept (View as code reads them from there)."""
        return None if self._attachments is None else str(self._attachments.root)

    def unsaved(self, message_id: int) -> dict[str, Any] | None:
        """What is held in memory for a reply the store could not take yet, if anything."""
        return self._unsaved.get(message_id)

    async def flush_unsaved(self) -> None:
        """Write the replies held in memory; StorageFailed (and they stay held) if the store still refuses."""
        for message_id in list(self._unsaved):
            problem = await self._save(message_id)
            if problem is not None:
                raise problem
        self.unsaved_problem = None
        if self._spill_pending and self._spill_file is not None:
            await asyncio.to_thread(self._spill_file.unlink, missing_ok=True)
            self._spill_pending = False

    async def spill_unsaved(self) -> Path | None:
        """At quit, with the store still refusing: write the replies held in memory to the spill
        file (atomically, off the event loop), for `restore_spilled` at the next start. Returns the
        file, or None when nothing was held. OSError if even that file cannot be written."""
        if not self._unsaved or self._spill_file is None:
            return None
        held = {str(message_id): changes_to_json(changes) for message_id, changes in self._unsaved.items()}
        data = json.dumps({"version": 1, "replies": held}, ensure_ascii=False).encode()
        await asyncio.to_thread(write_atomically, self._spill_file, data)
        return self._spill_file

    async def restore_spilled(self) -> int:
        """At start, once the store is open: write the replies the last session could not, then
        delete their file. Returns how many; StorageFailed (the file stays) if the store refuses.
        A file that cannot be read is set aside, named in the log, and never read again."""
        path = self._spill_file
        if path is None or not path.exists():
            return 0
        try:
            raw = json.loads(await asyncio.to_thread(path.read_bytes))
            spilled = {int(key): changes_from_json(value) for key, value in raw["replies"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            kept = await asyncio.to_thread(move_aside, path)
            log.error("replies kept at the last quit could not be read (%s); the file is now %s", exc, kept)
            return 0
        for message_id, changes in spilled.items():
            self._unsaved[message_id] = {**changes, **self._unsaved.get(message_id, {})}
        self._spill_pending = True
        await self.flush_unsaved()  # deletes the file once everything is written
        log.info("wrote %d repl%s kept at the last quit", len(spilled), "y" if len(spilled) == 1 else "ies")
        return len(spilled)

    async def save_draft(self, text: str) -> None:
        """At quit: keep what the composer holds (nothing kept when it is blank). OSError if it
        cannot be written."""
        if self._draft_file is None:
            return
        if not text.strip():
            await asyncio.to_thread(self._draft_file.unlink, missing_ok=True)
            return
        data = json.dumps({"version": 1, "text": text}, ensure_ascii=False).encode()
        await asyncio.to_thread(write_atomically, self._draft_file, data)

    async def take_draft(self) -> str:
        """At start: the text kept at the last quit ("" if none), and its file goes. A file that
        cannot be read is set aside and named in the log."""
        path = self._draft_file
        if path is None or not path.exists():
            return ""
        try:
            text = json.loads(await asyncio.to_thread(path.read_bytes))["text"]
            if not isinstance(text, str):
                raise TypeError("the draft is not text")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            kept = await asyncio.to_thread(move_aside, path)
            log.error("the message kept at the last quit could not be read (%s); the file is now %s", exc, kept)
            return ""
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return text

    async def refusal(
        self,
        *,
        target_id: str,
        model: str,
        params: ChatParams,
        text: str | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> DomainError | None:
        """Why this message (or, without `text`, an answer) cannot be sent at all, or None: asked at
        Send, before anything is stored, planned or recorded."""
        if text is not None and not attachments and (empty := preflight.empty_message(text)) is not None:
            return empty
        problem: DomainError | None = await self._dispatcher.refusal(target_id=target_id, model=model, params=params)
        if problem is None and any(a.kind is AttachmentKind.IMAGE for a in attachments):
            problem = await self._blind_model(target_id, model)
        return problem

    async def _blind_model(self, target_id: str, model: str) -> AttachmentRefused | None:
        """The model cannot take images, as LiteLLM knows it (not knowing is no refusal)."""
        if self._model_info is None or (await self._model_info(target_id, model)).vision is not False:
            return None
        where = self._dispatcher.target_label(target_id)
        return AttachmentRefused(
            f"{model}{f' on {where}' if where else ''} does not take images; pick a vision model or remove the image."
        )

    async def add_user_message(
        self, conversation: Conversation, user_text: str, attachments: tuple[Attachment, ...] = ()
    ) -> None:
        """Store the user's message (a new conversation is named after it); StorageFailed if it
        could not be stored, and then nothing was. An empty message is refused (raised), not stored."""
        if not attachments and (problem := preflight.empty_message(user_text)) is not None:
            raise problem
        await self.flush_unsaved()
        await self._store.add_message(conversation.id, role="user", content=user_text, attachments=attachments)
        if conversation.title == DEFAULT_TITLE and user_text.strip():
            title = first_title(user_text)
            try:
                await self._store.rename_conversation(conversation.id, title)
            except StorageFailed:
                return  # the message is stored; the name can wait for the next message
            conversation.title = title

    async def reply(
        self,
        conversation: Conversation,
        user_text: str,
        *,
        override_budget: bool = False,
        attachments: tuple[Attachment, ...] = (),
    ) -> AsyncGenerator[StreamEvent, None]:
        """Add the user's message (with the files attached) and stream the assistant's answer. A
        request that cannot be sent raises its DomainError before anything is stored (see `refusal`)."""
        problem = await self.refusal(
            target_id=conversation.account_id,
            model=conversation.model,
            params=conversation.params,
            text=user_text,
            attachments=attachments,
        )
        if problem is not None:
            raise problem
        await self._check_files(conversation, attachments)
        await self.add_user_message(conversation, user_text, attachments)
        # Closing this generator (Stop) must close the answer now, not whenever it is collected:
        # only then is the partial reply stored as STOPPED and the HTTP stream closed at once.
        answer = self._answer(conversation, override_budget)
        async with contextlib.aclosing(answer):
            async for event in answer:
                yield event

    async def discard_unfinished_answer(self, conversation: Conversation) -> bool:
        """Before a Retry: drop the last answer if it failed or was cut short. True if one was."""
        await self.flush_unsaved()
        messages = await self._store.messages(conversation.id)
        if (
            len(messages) >= 2
            and messages[-1].role == "assistant"
            and messages[-1].status is not MessageStatus.COMPLETE
        ):
            await self._store.delete_message(messages[-1].id)
            # Answer the same question again, even where other versions of the reply follow it.
            await self._store.set_leaf(conversation.id, messages[-1].parent_id)
            return True
        return False

    async def answer_tool_calls(
        self, conversation: Conversation, results: Sequence[tuple[str, str]]
    ) -> AsyncGenerator[StreamEvent, None]:
        """Store the user's results ((call id, text) for each call of the last reply) as `tool`
        messages and return the stream of the model's next answer; refused (raised) as `reply` is."""
        problem = await self.refusal(
            target_id=conversation.account_id, model=conversation.model, params=conversation.params
        )
        if problem is not None:
            raise problem
        await self.flush_unsaved()
        for call_id, text in results:
            await self._store.add_message(conversation.id, role="tool", content=text, tool_call_id=call_id)
        return self._answer(conversation)

    def answer(self, conversation: Conversation, *, override_budget: bool = False) -> AsyncGenerator[StreamEvent, None]:
        """Stream an answer to the conversation as it stands (used by Retry); raises, as `reply` does,
        when it cannot be sent."""
        return self._answer(conversation, override_budget)

    # --- iterating on a turn: versions, deletion, branches -----------------------------------------

    async def regenerate(
        self, conversation: Conversation, reply_id: int, *, override_budget: bool = False
    ) -> AsyncGenerator[StreamEvent, None]:
        """Show the branch up to the reply's question and return the stream of a new answer to it: a new
        version of the reply (the old ones stay). Raises the refusal, as `reply` does, before anything
        changes; KeyError if the reply is gone; StorageFailed if the store refused (nothing changed)."""
        reply = await self._store.get_message(reply_id)
        if reply is None or reply.role != "assistant" or reply.conversation_id != conversation.id:
            raise KeyError(f"there is no reply {reply_id} in conversation {conversation.id}")
        problem = await self.refusal(
            target_id=conversation.account_id, model=conversation.model, params=conversation.params
        )
        if problem is not None:
            raise problem
        await self.flush_unsaved()
        await self._store.set_leaf(conversation.id, reply.parent_id)
        return self._answer(conversation, override_budget)

    async def edit(self, conversation: Conversation, message_id: int, text: str) -> AsyncGenerator[StreamEvent, None]:
        """Store `text` as a new version of the user's message or tool result `message_id` (the
        conversation goes on from it) and return the stream of its answer. Refused (raised) before
        anything is stored, as `reply` is; KeyError if the message is gone; StorageFailed if the
        store refused it."""
        original = await self._store.get_message(message_id)
        if original is None or original.role not in ("user", "tool") or original.conversation_id != conversation.id:
            raise KeyError(f"there is no message {message_id} of yours in conversation {conversation.id}")
        problem = await self.refusal(
            target_id=conversation.account_id, model=conversation.model, params=conversation.params, text=text
        )
        if problem is not None:
            raise problem
        await self.flush_unsaved()
        # The results after it answer the same reply's other calls: they go with the new version
        # (copied), else those calls would be sent unanswered and dropped from the request.
        later = await self._later_results(conversation, original) if original.role == "tool" else []
        await self._store.add_message(
            conversation.id,
            role=original.role,
            content=text,
            parent_id=original.parent_id,
            attachments=original.attachments,  # the text is what was edited: the files stay with it
            tool_call_id=original.tool_call_id,
        )
        for result in later:
            await self._store.add_message(
                conversation.id, role="tool", content=result.content, tool_call_id=result.tool_call_id
            )
        return self._answer(conversation)

    async def _later_results(self, conversation: Conversation, result: StoredMessage) -> list[StoredMessage]:
        """The tool results that follow `result` on the branch shown, up to the next other message."""
        path = await self._store.messages(conversation.id)
        place = next((i for i, m in enumerate(path) if m.id == result.id), len(path))
        later: list[StoredMessage] = []
        for message in path[place + 1 :]:
            if message.role != "tool":
                break
            later.append(message)
        return later

    async def delete_conversation(self, conversation_id: int, *, keep: frozenset[str] = frozenset()) -> bool:
        """Delete the conversation, and the attached files no other message refers to (nor `keep`:
        the digests of files attached to a message not sent yet)."""
        deleted = await self._store.delete_conversation(conversation_id)
        await self.remove_unused_attachments(keep)
        return deleted

    async def remove_unused_attachments(self, keep: frozenset[str] = frozenset()) -> int:
        """Delete the kept files no message refers to any more, other than `keep`; how many went. A
        folder that cannot be cleaned is only logged: the files take space, nothing is lost."""
        if self._attachments is None:
            return 0
        used = await self._store.attachment_digests() | keep
        try:
            return await self._attachments.remove_unused(used)
        except OSError as exc:
            log.warning("attached files no longer used could not be removed: %s", exc)
            return 0

    async def delete_turn(self, message_id: int, *, keep: frozenset[str] = frozenset()) -> int:
        """Delete the message and all that follows it, on every branch; returns how many went. The
        attached files no message refers to any more go too (not those in `keep`)."""
        await self.flush_unsaved()
        deleted = await self._store.delete_message(message_id)
        await self.remove_unused_attachments(keep)
        return deleted

    async def branch(self, message_id: int) -> Conversation:
        """A new conversation holding copies of the branch up to `message_id` (held replies written first)."""
        await self.flush_unsaved()
        return await self._store.branch(message_id)

    async def show_version(self, message_id: int, step: int = 0) -> int | None:
        """Show the branch through the version `step` places from `message_id` (0: itself, -1: the one
        before); returns the id of the version shown, None if there is none there."""
        versions = await self._store.versions(message_id)
        if message_id not in versions:
            return None
        place = versions.index(message_id) + step
        if not 0 <= place < len(versions):
            return None
        await self.flush_unsaved()
        if await self._store.show_version(versions[place]) is None:
            return None
        return versions[place]

    async def history(self, conversation_id: int) -> list[ChatMessage]:
        """The stored messages that go with the next request as context."""
        return answered_calls_only(
            [_sent(m) for m in await self._store.messages(conversation_id) if _counts_as_history(m)]
        )

    async def _answer(
        self, conversation: Conversation, override_budget: bool = False
    ) -> AsyncGenerator[StreamEvent, None]:
        # Asked again here, just before the reply is stored: the pane asked at Send, but the account
        # or its key may have gone since.
        problem = await self.refusal(
            target_id=conversation.account_id, model=conversation.model, params=conversation.params
        )
        if problem is not None:
            raise problem
        await self.flush_unsaved()
        history = answered_calls_only(
            [
                _sent(m, await self._files(m))
                for m in await self._store.messages(conversation.id)
                if _counts_as_history(m)
            ]
        )
        # The conversation's images go again with every request: a model switched to since must see them.
        images = any(f.attachment.kind is AttachmentKind.IMAGE for m in history for f in m.files)
        if images and (problem := await self._blind_model(conversation.account_id, conversation.model)) is not None:
            raise problem
        reply = await self._store.add_message(
            conversation.id,
            role="assistant",
            content="",
            status=MessageStatus.STREAMING,
            account_id=conversation.account_id,
            model=conversation.model,
        )
        events = self._dispatcher.stream(
            target_id=conversation.account_id,
            model=conversation.model,
            messages=history,
            params=conversation.params,
            override_budget=override_budget,
        )
        # The sent request is kept with the reply at once, so it survives a crash.
        replies = self._stream_reply(reply.id, events, hold_request=False)
        async with contextlib.aclosing(replies):
            async for event in replies:
                yield event

    async def answer_lane(
        self, conversation: Conversation, lane: int, column: CompareColumn, *, path: list[StoredMessage] | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream compare column `lane`'s answer (its target, model and parameters) to that lane's
        history, stored as that lane's reply and saved as `_answer` saves; raises as `reply` does.
        `path`: the lane's stored history when the caller knows it (a first turn), to skip reading it."""
        params = column.params(conversation.params)
        problem = await self.refusal(target_id=column.account_id, model=column.model, params=params)
        if problem is not None:
            raise problem
        await self.flush_unsaved()
        if path is None:
            path = await self._store.messages(conversation.id, lane=lane)
        history = answered_calls_only([_sent(m, await self._files(m)) for m in path if _counts_as_history(m)])
        images = any(f.attachment.kind is AttachmentKind.IMAGE for m in history for f in m.files)
        if images and (problem := await self._blind_model(column.account_id, column.model)) is not None:
            raise problem
        requested = self._dispatcher.stream(
            target_id=column.account_id, model=column.model, messages=history, params=params
        )
        # The request goes out while the reply's row is written: the columns share one store, and
        # their first tokens need not wait in its queue.
        first = asyncio.ensure_future(anext(requested, None))
        try:
            reply = await self._store.add_message(
                conversation.id,
                role="assistant",
                content="",
                status=MessageStatus.STREAMING,
                account_id=column.account_id,
                model=column.model,
                lane=lane,
            )
        except BaseException:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            await requested.aclose()
            raise
        events = self._stream_reply(reply.id, _resumed(first, requested))
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def _stream_reply(
        self, reply_id: int, events: AsyncGenerator[StreamEvent, None], *, hold_request: bool = True
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream `events` into the stored reply `reply_id`: partial text saved on a timer, then its
        status. `hold_request`: the sent request goes with the first text's write (compare columns
        share the store's one worker) rather than at once (a pool's later attempt replaces it)."""
        text: list[str] = []
        reasoning: list[str] = []
        status = MessageStatus.STOPPED  # unless the stream says otherwise
        saver = PartialSaver(self._save, reply_id, text, reasoning, self._save_interval_s)
        async with contextlib.aclosing(events):
            try:
                async for event in events:
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                        saver.changed()
                    elif isinstance(event, ReasoningDelta):
                        reasoning.append(event.text)
                        saver.changed()
                    elif isinstance(event, Started) and event.request is not None:
                        if hold_request:  # at most `save_interval_s` later, with the first text
                            saver.hold(request=event.request)
                        else:
                            await self._save(reply_id, request=event.request)
                    elif isinstance(event, ToolCalls):
                        await self._save(reply_id, tool_calls=event.calls)
                    elif isinstance(event, Finished):
                        status = MessageStatus.COMPLETE
                        await saver.finish(status, metrics=event.metrics)
                    elif isinstance(event, Failed):
                        status = MessageStatus.FAILED
                        await saver.finish(status, metrics=event.metrics, error=_error_text(event.error))
                    yield event
            except StorageFailed as exc:
                # A store the request itself needs failed (the usage log, for a budget): the turn says
                # so, rather than looking stopped or cut short by a closing app.
                status = MessageStatus.FAILED
                await saver.finish(status, error=_error_text(exc))
                raise
            finally:
                if status is MessageStatus.STOPPED:
                    # Stopped by the user (or the app quitting): keep what arrived.
                    await saver.finish(status)
                else:
                    await saver.stop()

    async def _check_files(self, conversation: Conversation, attachments: tuple[Attachment, ...]) -> None:
        """AttachmentRefused, before the message is stored, when a file it or the history would send
        is gone from disk, or is an image the model cannot see."""
        earlier = [
            a for m in await self._store.messages(conversation.id) if _counts_as_history(m) for a in m.attachments
        ]
        if not earlier and not attachments:
            return
        if self._attachments is None:
            raise AttachmentRefused("This message has attached files, and this session cannot read them.")
        await self._attachments.check([*earlier, *attachments])
        if any(a.kind is AttachmentKind.IMAGE for a in earlier) and (
            problem := await self._blind_model(conversation.account_id, conversation.model)
        ):
            raise problem

    async def _files(self, message: StoredMessage) -> tuple[AttachedFile, ...]:
        """The message's attached files with their bytes (and a PDF's text); AttachmentRefused when
        one is no longer on disk as it was attached."""
        if not message.attachments:
            return ()
        if self._attachments is None:
            raise AttachmentRefused("This message has attached files, and this session cannot read them.")
        files = []
        for attachment in message.attachments:
            data = await self._attachments.read(attachment)
            text = ""
            if attachment.kind is AttachmentKind.PDF:
                if attachment.digest not in self._pdf_texts:
                    self._pdf_texts[attachment.digest] = await asyncio.to_thread(pdf_text, data)
                text = self._pdf_texts[attachment.digest]
            files.append(AttachedFile(attachment, data, text))
        return tuple(files)

    async def _save(self, message_id: int, **changes: Any) -> StorageFailed | None:
        """Write the reply's changes (with any held before); on a storage fault hold them instead."""
        held = {**self._unsaved.pop(message_id, {}), **changes}
        try:
            await self._store.update_message(message_id, **held)
        except StorageFailed as exc:
            self._unsaved[message_id] = held
            self.unsaved_problem = exc
            log.warning("reply %s is held in memory: the store refused it", message_id)
            return exc
        if not self._unsaved:
            self.unsaved_problem = None
        return None


async def _resumed(
    first: asyncio.Future[StreamEvent | None], rest: AsyncGenerator[StreamEvent, None]
) -> AsyncGenerator[StreamEvent, None]:
    """The stream whose first event `first` is already fetching, then the rest of it."""
    try:
        event = await first
        if event is None:
            return
        yield event
        async for event in rest:
            yield event
    finally:
        if not first.done():
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
        await rest.aclose()


def _counts_as_history(message: StoredMessage) -> bool:
    if message.role in ("user", "tool"):
        return True
    return (
        message.role == "assistant"
        and message.status in SENT_AS_CONTEXT
        and bool(message.content or message.tool_calls)
    )


def _sent(message: StoredMessage, files: tuple[AttachedFile, ...] = ()) -> ChatMessage:
    """A stored message as it goes into a request (tool calls and results in OpenAI's shape)."""
    return ChatMessage(message.role, message.content, files, message.tool_calls, message.tool_call_id)  # type: ignore[arg-type]


async def recover_interrupted(
    store: ConversationStore,
    usage: UsageStore,
    settings: Settings,
) -> list[InterruptedReply]:
    """At start-up: replies a crash cut off become `interrupted`, and each gets the usage record its
    request never wrote (status "interrupted", tokens and cost unknown)."""
    found = await store.recover_interrupted()
    for reply in found:
        pool = settings.pool(reply.account_id)
        await usage.record(
            UsageRecord.from_metrics(
                ReplyMetrics(),  # nothing measured
                at=reply.started_at,
                account_id=reply.account_id,
                model=reply.model,
                status="interrupted",
                pool_id=pool.id if pool else "",
            )
        )
    return found


def _error_text(error: DomainError) -> str:
    return f"{error.message} {error.action}".strip()
