"""What plugins register (recipes, engines, scorers, taggers, ...) and lookup by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from magpie_hub.errors import PluginError

if TYPE_CHECKING:
    from distilabel.pipeline.local import Pipeline

    from magpie_hub.config import EngineConfig, RunConfig
    from magpie_hub.engines.base import ModelInfo, RawTextLLM
    from magpie_hub.prompts.templates import PromptFormat
    from magpie_hub.row_types import RowTypes
    from magpie_hub.steps import RowIndices


C = TypeVar("C")


def recipe_config(config: Any, model: type[C]) -> C:
    """`config` narrowed to a recipe's config model (a recipe given another one is a bug in
    the plugin that registered it, reported as such)."""
    if not isinstance(config, model):
        raise PluginError(
            getattr(config, "recipe", "?"),
            f"the recipe expected a {model.__name__} config, got {type(config).__name__}",
            hint="Register the recipe with its own config model (`Recipe.config_model`).",
        )
    return config


@dataclass(frozen=True)
class BuildContext:
    """What a recipe needs besides its config to build a pipeline."""

    config: RunConfig
    model: ModelInfo
    format: PromptFormat
    """The prompt format, resolved once for the build (its render date frozen)."""
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
        return self.format

    def recipe_config(self, model: type[C]) -> C:
        """The config as the recipe's own model; a `PluginError` if another reached it."""
        return recipe_config(self.config, model)

    def pipeline(self, recipe: str) -> Pipeline:
        """The recipe's distilabel `Pipeline` (enter it with `with`), caching in the build.
        distilabel's pipeline module is imported here, not when the plugin loads: a build
        plans and starts loading its model first (0.2-0.3 s, networkx included)."""
        from distilabel.pipeline.local import Pipeline

        return Pipeline(name=f"magpie-hub-{recipe}", cache_dir=self.cache_dir)

    def row_source(self, name: str = "rows") -> RowIndices:
        """The pipeline's first step: one `{"row_index": i}` per row still to generate."""
        from magpie_hub.steps import RowIndices, index_ranges

        return RowIndices(
            name=name, ranges=index_ranges(self.row_indices), batch_size=self.config.batch_size
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
    features: RowTypes
    """Column types of the rows the recipe writes (`magpie_hub.row_types`; plain types keep
    `datasets` off a build's start, `datasets.Features` are taken too)."""
    views: Callable[[Sequence[dict[str, Any]], RunConfig], dict[str, View]] | None = None
    """Derived views of the finished rows, each written as its own config (data/<name>/).
    The rows are `BuildFolder.rows()`, read from the shards as they are iterated; build
    views with `row_streams.made_view` so that writing them streams too."""
    check: Callable[[RunConfig, PromptFormat], None] | None = None
    """Refuses a config the resolved prompt format cannot serve (raises our errors); runs
    before the build folder is touched."""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class View:
    """Rows derived from a finished build, with their features and what was left out: a
    list, or rows made as they are written (`row_streams.made_view`)."""

    rows: Sequence[dict[str, Any]]
    features: RowTypes
    """Column types (`magpie_hub.row_types`), or `datasets.Features`."""
    counts: Mapping[str, Any] = field(default_factory=dict)


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
    """A section of the dataset card: `render` gets the card context (see `magpie_hub.release.card`)
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
class ReviewOptions:
    """What one `review push` asks of a recipe's review spec."""

    recipe: str = ""
    recipe_description: str = ""
    min_submitted: int = 1
    """Submitted responses a record needs to be complete (Argilla's task distribution)."""
    suggestions: bool = False
    """Pre-fill the judge's tags and the scorer's choice (off: reviewers are not anchored)."""
    seed: int = 0
    """Seeds the per-record A/B order of blind pairs."""


@dataclass(frozen=True)
class ReviewSpec:
    """How a recipe's rows appear in Argilla for human review."""

    name: str
    """The recipe this spec is for."""
    settings: Callable[[list[dict[str, Any]], ReviewOptions], Any]
    """(rows to push, options) -> `argilla.Settings`: guidelines, fields, questions,
    metadata, vectors, distribution."""
    record: Callable[[dict[str, Any], ReviewOptions], dict[str, Any]]
    """(row, options) -> {id, fields, metadata, vectors, suggestions: [(question, value,
    agent)]}."""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class Tagger:
    """Adds tag columns to a build's rows (`magpie-hub curate`); see `magpie_hub.curate`."""

    name: str
    description: str
    columns: dict[str, Any]
    """Output column -> `datasets` feature, e.g. {"language": Value("string")}."""
    make_step: Callable[[Any], Any]
    """(a `curate.kit.TagContext`) -> a distilabel step that sets the `stored` columns on
    the rows it is asked to tag (see `curate.kit.TagStep`)."""
    stored: dict[str, Any] | None = None
    """Columns the step computes per row and the tag store caches; default `columns`."""
    finalize: Callable[[Any, Any], Any] | None = None
    """(stored values in build order as a pyarrow Table, context) -> each row's `columns`,
    as dicts (every row gives the same keys) or a pyarrow Table: a shard's rows at a time,
    or every row at once with `whole_build`. Without it, the stored columns are the
    output."""
    whole_build: bool = False
    """`finalize` needs every row's stored values at once (near-duplicates); it then holds
    them all, where other taggers are joined a shard at a time."""
    uses_judge: bool = False
    """Asks the `[curate.judge]` model (its identity is then part of the cache key)."""
    options: Callable[[Any], Any] | None = None
    """(the `[curate]` config) -> the settings that shape the stored values (cache key)."""
    check: Callable[[Any], None] | None = None
    """(the `[curate]` config) -> raises a `MagpieHubError` for settings that cannot work;
    called before any work."""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class Kind:
    """One kind of thing a plugin can register: its class, its hook and its names."""

    cls: type
    label: str
    """Singular, for messages: "recipe"."""
    plural: str
    """The `Registry` attribute and the `magpie-hub plugins --json` key: "recipes"."""
    hook: str
    """The hookspec that registers it."""


KINDS: tuple[Kind, ...] = (
    Kind(Recipe, "recipe", "recipes", "register_recipes"),
    Kind(Engine, "engine", "engines", "register_engines"),
    Kind(CardSection, "card section", "card_sections", "register_card_sections"),
    Kind(Scorer, "scorer", "scorers", "register_scorers"),
    Kind(ReviewSpec, "review spec", "review_specs", "register_review_specs"),
    Kind(Tagger, "tagger", "taggers", "register_taggers"),
)
"""The one table of plugin kinds: loading, crediting, listing and lookup all read it."""


@dataclass
class Registry:
    recipes: dict[str, Recipe] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)
    card_sections: dict[str, CardSection] = field(default_factory=dict)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    review_specs: dict[str, ReviewSpec] = field(default_factory=dict)
    taggers: dict[str, Tagger] = field(default_factory=dict)

    def _get(self, kind: str, name: str) -> Any:
        from magpie_hub.errors import UnknownNameError

        found = next(k for k in KINDS if k.label == kind)
        table = getattr(self, found.plural)
        if name not in table:
            raise UnknownNameError(kind, name, table)
        return table[name]

    def scorer(self, name: str) -> Scorer:
        return self._get("scorer", name)

    def recipe(self, name: str) -> Recipe:
        return self._get("recipe", name)

    def engine(self, name: str) -> Engine:
        return self._get("engine", name)

    def tagger(self, name: str) -> Tagger:
        return self._get("tagger", name)

    def add(self, item: Any, plugin: str) -> Kind:
        """Add `item` under its kind; returns the kind."""
        from magpie_hub.errors import PluginError

        kind = next((k for k in KINDS if type(item) is k.cls), None)
        if kind is None:
            kinds = ", ".join(k.cls.__name__ for k in KINDS)
            raise PluginError(plugin, f"registered {item!r}, which is none of {kinds}")
        table = getattr(self, kind.plural)
        if item.name in table:
            raise PluginError(
                plugin,
                f"{kind.label} {item.name!r} is already registered by plugin "
                f"{table[item.name].plugin!r}",
                hint="Rename one of them, or restrict plugins with MAGPIE_HUB_PLUGINS.",
            )
        table[item.name] = _with_plugin(item, plugin)
        return kind


def _with_plugin(item: Any, plugin: str) -> Any:
    from dataclasses import replace

    return replace(item, plugin=plugin)
