"""Built-in dataset card sections, registered through the same hook as any plugin's."""

from __future__ import annotations

from collections.abc import Callable

from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import CardSection
from magpie_hub.release.card import CardContext


def system_prompt_mix(ctx: CardContext) -> str | None:
    """Rows per system-prompt key, for configs that record one."""
    parts = []
    for stats in ctx.stats.values():
        if not stats.categories or set(stats.categories) == {"(none)"}:
            continue
        lines = [f"Config {stats.name}:", ""]
        lines += ["| system_prompt_key | rows | share |", "|---|---|---|"]
        for key, rows in stats.categories.items():
            lines.append(f"| {key} | {rows} | {rows / stats.rows:.1%} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) or None


@hookimpl
def register_card_sections(register: Callable[[CardSection], None]) -> None:
    register(
        CardSection(
            name="system-prompt-mix",
            title="System prompt mix",
            render=system_prompt_mix,
            order=10,
        )
    )
