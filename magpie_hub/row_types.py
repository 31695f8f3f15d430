"""Column types of the rows a recipe, view or tagger writes, declared without `datasets`.

A type is an Arrow type name (`"string"`, `"int64"`, `"float64"`, `"bool"`, `"float32"`),
`[type]` for a list of it, or `{name: type}` for a struct; a `datasets` feature type
(`Value`, `List`, `Features`) is taken too. `arrow_schema` needs only pyarrow, so a build
starts without importing `datasets` (0.4-0.9 s with pandas and the Hub client);
`features` and `shard_schema` import it, for the shards, views and card written after.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import pyarrow as pa

RowType: TypeAlias = "str | list[Any] | dict[str, Any] | Any"
RowTypes: TypeAlias = "Mapping[str, RowType]"

MESSAGES: RowType = [{"role": "string", "content": "string"}]
"""A chat: the `conversation` (or `prompt`, `chosen`, ...) column of every recipe."""


def arrow_type(kind: RowType) -> pa.DataType:
    """The Arrow type of one column type."""
    if isinstance(kind, str):
        return pa.type_for_alias(kind)
    if isinstance(kind, list):
        if len(kind) != 1:
            raise TypeError(f"a list type holds one item type, not {kind!r}")
        return pa.list_(arrow_type(kind[0]))
    if isinstance(kind, dict):
        return pa.struct([(name, arrow_type(item)) for name, item in kind.items()])
    from datasets.features.features import get_nested_type  # a `datasets` feature type

    return get_nested_type(kind)


def arrow_schema(types: RowTypes) -> pa.Schema:
    """The Arrow schema of rows with these columns (pyarrow only)."""
    return pa.schema([(name, arrow_type(kind)) for name, kind in types.items()])


def features(types: RowTypes) -> Any:
    """The same columns as `datasets.Features` (imports `datasets`)."""
    from datasets import Features

    if isinstance(types, Features):
        return types
    return Features.from_arrow_schema(arrow_schema(types))


def shard_schema(types: RowTypes) -> pa.Schema:
    """The schema shards and views are written with: Arrow's, plus the features as
    `datasets` metadata, so `load_dataset` reads back exactly the declared types."""
    return features(types).arrow_schema
