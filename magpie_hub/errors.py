"""Every error magpie-hub raises on purpose, each with the context to act on it.

The CLI renders these in one place (`magpie_hub.cli.main`): the message, then
the `hint` (what to do). Library callers can catch `MagpieHubError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def network_errors() -> tuple[type[BaseException], ...]:
    """What the HTTP clients raise when a server cannot be reached or drops the connection
    (httpx2 for huggingface_hub >= 2, httpx for older ones and Argilla's SDK, requests for
    older code paths, the OS's own)."""
    import httpx
    import requests

    try:
        import httpx2

        newer: tuple[type[BaseException], ...] = (httpx2.TransportError,)
    except ImportError:
        newer = ()
    return (
        *newer,
        httpx.TransportError,
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        ConnectionError,
        TimeoutError,
    )


def in_chain(exc: BaseException, kind: type | tuple[type[BaseException], ...]) -> Any:
    """The first exception of `kind` in `exc`'s cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class MagpieHubError(Exception):
    """Base class: a message and a hint saying what to do about it."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(MagpieHubError):
    """A config file is missing, unreadable or invalid."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.field = field
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{message}", hint=hint)


class ConfigValidationError(ConfigError):
    """One or more fields of a config are invalid; each problem names its dotted path."""

    def __init__(self, path: Path | None, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {field}: {msg}" for field, msg in problems)
        n = len(problems)
        super().__init__(
            f"invalid config ({n} problem{'s' if n != 1 else ''}):\n{lines}",
            path=path,
            field=problems[0][0] if problems else None,
            hint="Fix the field(s) above; `magpie-hub init` writes a commented example.",
        )


class UnknownNameError(MagpieHubError):
    """A recipe, engine or template name that no loaded plugin provides."""

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        listed = ", ".join(self.available) or "(none loaded)"
        super().__init__(
            f"unknown {kind} {name!r}; available: {listed}",
            hint=f"Pick one of the above, or install the plugin that provides {kind} {name!r} "
            "(`magpie-hub plugins` lists what is loaded).",
        )


class PluginError(MagpieHubError):
    """A plugin misbehaved: failed to import, or registered a clashing name."""

    def __init__(self, plugin: str, message: str, *, hint: str | None = None) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}", hint=hint)


class MissingDependencyError(MagpieHubError):
    """An optional dependency is needed for what was asked."""

    def __init__(self, package: str, needed_for: str, install: str) -> None:
        self.package = package
        super().__init__(
            f"{needed_for} needs the Python package {package!r}, which is not installed",
            hint=f"Install it: {install}",
        )


class ModelNotFoundError(MagpieHubError):
    """The configured model file or folder does not exist."""

    def __init__(self, model: str, *, hint: str | None = None) -> None:
        self.model = model
        super().__init__(
            f"model not found: {model}",
            hint=hint
            or "Give a path to a .gguf file (llamacpp) or a Hugging Face model folder "
            "(transformers), or `embedded:smollm2` for the bundled SmolLM2-135M-Instruct.",
        )


class ModelFileError(MagpieHubError):
    """A model file exists but cannot be read (damaged, truncated, or another format)."""

    def __init__(self, model: str, message: str, *, hint: str | None = None) -> None:
        self.model = model
        super().__init__(f"{model}: {message}", hint=hint)


class ChatTemplateError(MagpieHubError):
    """A model has no usable chat template, or the template cannot be used for Magpie."""

    def __init__(self, model: str, message: str, *, hint: str | None = None) -> None:
        self.model = model
        super().__init__(
            f"{model}: {message}",
            hint=hint
            or 'Name a template preset in the config, e.g. `engine.template = "chatml"` '
            "(`magpie-hub plugins` and the README list the presets), or give "
            "`engine.chat_template` as a Jinja string.",
        )


class BuildFolderError(MagpieHubError):
    """The output folder cannot be used for this run."""

    def __init__(self, path: Path, message: str, *, hint: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}", hint=hint)


class BuildLockedError(BuildFolderError):
    """Another process is writing to this build folder (a folder has one writer)."""

    def __init__(self, path: Path, pid: int | None, *, holder_alive: bool = True) -> None:
        self.pid = pid
        if pid is None:
            who = "another process"
        elif holder_alive:
            who = f"another magpie-hub process (PID {pid})"
        else:
            who = f"worker processes of PID {pid}, which has ended,"
        super().__init__(
            path,
            f"{who} is writing to this build folder",
            hint="Wait for it to finish (or stop it), then run the command again; "
            "or use another --out.",
        )


class StorageError(MagpieHubError):
    """The disk refused a write: full, read-only, or not ours to write."""

    def __init__(self, path: str | None, message: str, *, hint: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message, hint=hint)

    @classmethod
    def from_os_error(cls, exc: OSError) -> StorageError | None:
        """Our error for a disk-level `OSError`; None for any other OSError (a bug)."""
        import errno

        path = exc.filename if isinstance(exc.filename, str) else None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return cls(
                path,
                "no space left on the device",
                hint="Free some space (or use another --out), then re-run the same command: "
                "what was committed before is kept.",
            )
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return cls(
                path,
                f"cannot write here ({exc.strerror})",
                hint="Use a folder you can write to, or fix its permissions.",
            )
        return None


class ImportSourceError(MagpieHubError):
    """`magpie-hub import` cannot use its source: missing, unreadable, or of the wrong shape."""

    def __init__(
        self,
        source: str,
        message: str,
        *,
        columns: Iterable[str] | None = None,
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.columns = list(columns) if columns is not None else []  # as found, if read
        super().__init__(f"{source}: {message}", hint=hint)


class EngineError(MagpieHubError):
    """An engine or the server behind it failed or cannot serve what was asked."""


class HubError(MagpieHubError):
    """The Hugging Face Hub refused or failed a request; the local build is untouched."""

    def __init__(self, repo_id: str, message: str, *, hint: str | None = None) -> None:
        self.repo_id = repo_id
        super().__init__(f"{repo_id}: {message}", hint=hint)


class HubAuthError(HubError):
    """No token, or the Hub rejected it."""


class HubPermissionError(HubError):
    """The token cannot write to this repository (another owner's, or read-only)."""


class HubNetworkError(HubError):
    """The Hub could not be reached."""


class HubConflictError(HubError):
    """The release clashes with what the repository holds (a tag at another commit)."""


class ReviewError(MagpieHubError):
    """Argilla cannot be reached, refused the key, or cannot serve a review request."""


class CurateIncompleteError(MagpieHubError):
    """A curate run stopped before every row had every tag (interrupted, or a step failed)."""

    exit_code = 3

    def __init__(self, *, build: Path, missing: dict[str, int], log: Path) -> None:
        self.build = build
        self.missing = missing
        lacking = ", ".join(f"{name}: {n} rows" for name, n in missing.items() if n)
        super().__init__(
            f"{build}: curation incomplete, rows still without a tag ({lacking})",
            hint=f"Committed tags are kept; re-run the same command to continue (log under {log}).",
        )
