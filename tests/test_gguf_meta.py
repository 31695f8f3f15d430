"""Our GGUF header reader against the `gguf` package's own reader and writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from magpie_hub.engines.gguf_meta import read_header, token_texts
from magpie_hub.engines.models import GGUF_KEYS, read_gguf_metadata


def reference(path: Path) -> dict:
    """What `gguf.GGUFReader` reads for the keys we use (the slow, complete parse)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = {
        k: f.contents()
        for k, f in reader.fields.items()
        if k.startswith("general.") or k in GGUF_KEYS
    }
    vocab = reader.fields["tokenizer.ggml.tokens"].contents()
    for role in ("bos", "eos"):
        meta[f"{role}_token"] = vocab[meta[f"tokenizer.ggml.{role}_token_id"]]
    return meta


@pytest.mark.parametrize("endian", ["LITTLE", "BIG"])
def test_a_written_file_reads_back_as_gguf_reads_it(tmp_path: Path, endian: str) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama", endianess=getattr(gguf.GGUFEndian, endian))
    writer.add_name("tiny")
    writer.add_string("general.organization", "org")
    writer.add_array("general.languages", ["en", "fr"])
    writer.add_uint32("general.file_type", 7)
    writer.add_float32("some.float", 0.5)
    writer.add_array("some.ints", [1, 2, 3])
    writer.add_token_list(["<s>", "</s>", "héllo", "<|im_end|>"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(3)
    writer.add_chat_template("{{ messages }}")
    writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert read_gguf_metadata(path) == reference(path)
    header = read_header(path, lambda key: key == "some.ints")
    assert header["some.ints"] == [1, 2, 3]
    assert token_texts(path, header["tokens_at"], [2, 99]) == {2: "héllo"}


@pytest.mark.embedded
def test_the_embedded_model_reads_as_gguf_reads_it(embedded_model: Path) -> None:
    assert read_gguf_metadata(embedded_model) == reference(embedded_model)


@pytest.mark.parametrize("size", [3, 5000, 100_000])
def test_a_truncated_file_is_a_model_file_error(tmp_path: Path, embedded_model: Path, size) -> None:
    from magpie_hub.engines.models import inspect_gguf
    from magpie_hub.errors import ModelFileError

    cut = tmp_path / "cut.gguf"
    cut.write_bytes(embedded_model.read_bytes()[:size])
    with pytest.raises(ModelFileError, match="not a readable GGUF file"):
        inspect_gguf(cut, None, None)
