"""An Ollama host's installed models in the chat's picker, through `LocalServers`, said in words."""

from __future__ import annotations

from collections.abc import Callable

from desktop_app.domain.ollama import OllamaHost
from desktop_app.services.local.servers import InPicker, LocalServers


class HostsInPicker:
    """What the Ollama pane asks of `LocalServers`; `say` gets the sentence for the status bar."""

    def __init__(self, local: LocalServers, *, say: Callable[[str], None]) -> None:
        self._local = local
        self._say = say

    async def listed(self, host: OllamaHost, names: list[str]) -> InPicker | None:
        """The pane listed `names` as installed on `host`: they go into the picker."""
        result = await self._local.ollama_listed(host, names)
        if result is not None and result.error is not None:
            self._say(result.error.message)
        elif result is not None and result.new:
            count = len(result.models)
            self._say(
                f"{result.account.label}: {count} installed model{'s are' if count != 1 else ' is'} "
                "now in the chat's picker."
            )
        return result

    async def chat_with(self, host: OllamaHost, name: str) -> InPicker:
        """ "Chat with it": the host's account (made again if the user removed it) with `name` listed."""
        result = await self._local.ollama_for_chat(host, name)
        if result.error is not None:
            self._say(result.error.message)
        return result
