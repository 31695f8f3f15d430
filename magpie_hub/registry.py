"""What plugins register: recipes and engines, and the lookup of both by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts

    from magpie_hub.config import EngineConfig, RunConfig
    from magpie_hub.engines.base import ModelInfo, RawTextLLM
    from magpie_hub.templates import PromptFormat


@dataclass(frozen=True)
class BuildContext:
    """What a recipe needs besides its config to build a pipeline."""

    config: RunConfig
    model: ModelInfo
    make_llm: Callable[[], RawTextLLM]
    """Returns a fresh, unloaded distilabel LLM for the configured engine and model."""
    row_indices: list[int]
    """Which rows to generate (all of them, or those a resumed run still lacks)."""
    chunk_dir: Path
    """Where the sink step commits finished chunks."""
    cache_dir: Path
    """distilabel's own cache and logs for this build."""
    extra_models: dict[str, ModelInfo] = field(default_factory=dict)
    """Models of the config's extra engines (`RunConfig.extra_engines`), by name."""
    make_extra_llm: Callable[[str], RawTextLLM] | None = None
    """Returns a fresh, unloaded LLM for the extra engine of that name."""

    def prompt_format(self) -> PromptFormat:
        """The configured template (`auto` or a preset) resolved for the inspected model."""
        from magpie_hub.templates import resolve

        return resolve(
            self.config.engine.template,
            self.model.chat_template,
            model=self.model.model_id,
            template_system=self.config.engine.template_system,
        )

    def row_source(self, name: str = "rows") -> LoadDataFromDicts:
        """The pipeline's first step: one `{"row_index": i}` per row still to generate."""
        from distilabel.steps import LoadDataFromDicts

        return LoadDataFromDicts(
            name=name,
            data=[{"row_index": i} for i in self.row_indices],
            batch_size=self.config.batch_size,
        )


@dataclass(frozen=True)
class Recipe:
    """A named builder from a validated config to a distilabel Pipeline."""

    name: str
    description: str
    config_model: type[RunConfig]
    build_pipeline: Callable[[BuildContext], Pipeline]
    starter_config: str
    """Commented TOML that runs as-is on the embedded model (`magpie-hub init`)."""
    features: Any
    """`datasets.Features` of the rows the recipe writes."""
    views: Callable[[list[dict[str, Any]], RunConfig], dict[str, View]] | None = None
    """Derived views of the finished rows, each written as its own config (data/<name>/)."""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class View:
    """Rows derived from a finished build, with their features and what was left out."""

    rows: list[dict[str, Any]]
    features: Any
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Engine:
    """An LLM engine: inspects a model cheaply, then makes its distilabel LLM."""

    name: str
    description: str
    inspect_model: Callable[[EngineConfig], ModelInfo]
    make_llm: Callable[[EngineConfig, ModelInfo], RawTextLLM]
    library_version: Callable[[], str | None]
    """Version of the library behind the engine, or None when it is not installed."""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class CardSection:
    """A section of the dataset card: `render` gets the card context (see `magpie_hub.card`)
    and returns Markdown, or None to leave the section out of this card."""

    name: str
    title: str
    render: Callable[[Any], str | None]
    order: int = 50
    """Sections appear by order, then name, after the statistics and before limitations."""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class Scorer:
    """Scores the two responses of a pair (recipe `magpie-ultra`)."""

    name: str
    description: str
    make_step: Callable[[BuildContext, Any], Any]
    """(build context, the `[scorer]` config) -> a distilabel step that sets `score`,
    `score_base`, `score_difference`, `score_error` and `scorer` on every live row."""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class ReviewSpec:
    """How a recipe's rows appear in Argilla for human review."""

    name: str
    """The recipe this spec is for."""
    settings: Callable[[list[dict[str, Any]]], Any]
    """(rows to push) -> `argilla.Settings`: fields, questions, metadata, vectors."""
    record: Callable[[dict[str, Any]], dict[str, Any]]
    """row -> {id, fields, metadata, vectors, suggestions: [(question, value, agent)]}."""
    plugin: str = field(default="", compare=False)


@dataclass
class Registry:
    recipes: dict[str, Recipe] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)
    card_sections: dict[str, CardSection] = field(default_factory=dict)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    review_specs: dict[str, ReviewSpec] = field(default_factory=dict)

    def scorer(self, name: str) -> Scorer:
        from magpie_hub.errors import UnknownNameError

        if name not in self.scorers:
            raise UnknownNameError("scorer", name, self.scorers)
        return self.scorers[name]

    def recipe(self, name: str) -> Recipe:
        from magpie_hub.errors import UnknownNameError

        if name not in self.recipes:
            raise UnknownNameError("recipe", name, self.recipes)
        return self.recipes[name]

    def engine(self, name: str) -> Engine:
        from magpie_hub.errors import UnknownNameError

        if name not in self.engines:
            raise UnknownNameError("engine", name, self.engines)
        return self.engines[name]

    def add(self, item: Any, plugin: str) -> None:
        from magpie_hub.errors import PluginError

        tables: dict[type, tuple[str, dict[str, Any]]] = {
            Recipe: ("recipe", self.recipes),
            Engine: ("engine", self.engines),
            CardSection: ("card section", self.card_sections),
            Scorer: ("scorer", self.scorers),
            ReviewSpec: ("review spec", self.review_specs),
        }
        if type(item) not in tables:
            kinds = ", ".join(t.__name__ for t in tables)
            raise PluginError(plugin, f"registered {item!r}, which is none of {kinds}")
        kind, table = tables[type(item)]
        if item.name in table:
            raise PluginError(
                plugin,
                f"{kind} {item.name!r} is already registered by plugin {table[item.name].plugin!r}",
                hint="Rename one of them, or restrict plugins with MAGPIE_HUB_PLUGINS.",
            )
        table[item.name] = _with_plugin(item, plugin)


def _with_plugin(item: Any, plugin: str) -> Any:
    from dataclasses import replace

    return replace(item, plugin=plugin)
