"""Row types: the Arrow schema without `datasets`, the same columns as `datasets.Features`."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from datasets import Features, List, Value

from magpie_hub.plugins import get_registry
from magpie_hub.row_types import arrow_schema, arrow_type, features, shard_schema


def test_names_lists_and_structs_map_to_arrow() -> None:
    types = {"a": "string", "n": "int64", "tags": ["string"], "s": {"x": "float64", "ok": "bool"}}
    assert arrow_schema(types) == pa.schema(
        [
            ("a", pa.string()),
            ("n", pa.int64()),
            ("tags", pa.list_(pa.string())),
            ("s", pa.struct([("x", pa.float64()), ("ok", pa.bool_())])),
        ]
    )


def test_the_same_columns_as_datasets_features() -> None:
    types = {"uuid": "string", "conversation": [{"role": "string", "content": "string"}]}
    assert features(types) == Features(
        {
            "uuid": Value("string"),
            "conversation": List({"role": Value("string"), "content": Value("string")}),
        }
    )
    assert shard_schema(types).metadata[b"huggingface"]  # load_dataset reads the features back


def test_datasets_types_are_taken_too() -> None:
    given = Features({"e": List(Value("float32")), "m": [{"k": Value("string")}]})
    assert features(given) is given
    assert arrow_schema(given) == pa.schema(
        [("e", pa.list_(pa.float32())), ("m", pa.list_(pa.struct([("k", pa.string())])))]
    )
    assert arrow_type({"mixed": Value("int64"), "plain": "string"}) == pa.struct(
        [("mixed", pa.int64()), ("plain", pa.string())]
    )


def test_a_list_type_holds_one_item_type() -> None:
    with pytest.raises(TypeError, match="one item type"):
        arrow_type(["string", "int64"])


def test_built_in_recipes_declare_plain_types() -> None:
    """Plain JSON, so the writer step serializes (Ray, pipeline dumps) and needs no `datasets`."""
    for recipe in get_registry().recipes.values():
        assert json.loads(json.dumps(recipe.features)) == recipe.features, recipe.name
        assert arrow_schema(recipe.features).names == list(recipe.features)
