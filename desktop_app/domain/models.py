"""What is known about one model: limits, abilities and prices, from LiteLLM's bundled model map.

Every field is optional: None means "not in the map", never "no". The summary is the one line the
model picker and the Accounts pane show next to a model name.
"""

from __future__ import annotations

from dataclasses import dataclass

_KIBI = 1024


def _tokens(count: int) -> str:
    """200000 -> "200K", 131072 -> "128K", 1048576 -> "1M", 1500000 -> "1.5M".

    Round decimal limits (128000) are named in decimal units, binary ones (8192, 131072, and
    65535 = 2**16 - 1) the way providers name them (8K, 128K, 64K).
    """
    binary = count + 1 if (count + 1) % _KIBI == 0 else count
    if count >= 1_000_000:
        if count % 1_000_000 and binary % (_KIBI * _KIBI) == 0:
            return f"{binary // (_KIBI * _KIBI)}M"
        return f"{round(count / 1_000_000, 1):g}M"
    if count >= 1_000:
        if count % 1_000 and binary % _KIBI == 0:
            return f"{binary // _KIBI}K"
        return f"{round(count / 1_000, 1 if count < 10_000 else 0):g}K"
    return str(count)


def _usd(per_mtok: float) -> str:
    if per_mtok == 0 or per_mtok >= 0.1:
        return f"${per_mtok:.2f}"
    return f"${per_mtok:.3g}"  # $0.075, not $0.07


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model: str
    context_window: int | None = None  # input tokens
    max_output: int | None = None  # output tokens per reply
    vision: bool | None = None
    tools: bool | None = None
    json_schema: bool | None = None  # structured output with a JSON schema
    input_usd_per_mtok: float | None = None
    output_usd_per_mtok: float | None = None
    # The parameters panel's parameters the model takes (see domain.param_support); None: unknown.
    params: tuple[str, ...] | None = None

    @property
    def known(self) -> bool:
        """Whether anything at all is known about the model."""
        return any(
            value is not None
            for value in (
                self.context_window,
                self.max_output,
                self.vision,
                self.tools,
                self.json_schema,
                self.input_usd_per_mtok,
                self.output_usd_per_mtok,
            )
        )

    def summary(self) -> str:
        """One line, e.g. "200K context · 64K out · vision · tools · JSON schema · $3.00 / $15.00 per
        M tokens"; only what is known is named, and "" when nothing is."""
        parts: list[str] = []
        if self.context_window:
            parts.append(f"{_tokens(self.context_window)} context")
        if self.max_output:
            parts.append(f"{_tokens(self.max_output)} out")
        parts += [
            name
            for flag, name in ((self.vision, "vision"), (self.tools, "tools"), (self.json_schema, "JSON schema"))
            if flag
        ]
        price_in, price_out = self.input_usd_per_mtok, self.output_usd_per_mtok
        if price_in is not None and price_out is not None:
            if price_in == 0 and price_out == 0:
                parts.append("free")
            else:
                parts.append(f"{_usd(price_in)} / {_usd(price_out)} per M tokens")
        return " · ".join(parts)
