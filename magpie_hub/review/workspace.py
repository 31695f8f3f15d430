"""The Argilla side of a push: the workspace, its annotators, and the dataset's settings."""

from __future__ import annotations

from typing import Any

from magpie_hub.errors import ReviewError


def role_of(user: Any) -> str:
    return str(getattr(user.role, "value", user.role))


def ensure_workspace(client: Any, name: str, create: bool) -> Any:
    import argilla as rg

    found = client.workspaces(name)
    if found is not None:
        return found
    if not create:
        raise ReviewError(
            f"Argilla has no workspace {name!r}",
            hint="Create it: pass --create-workspace (or choose another --workspace).",
        )
    return rg.Workspace(name=name, client=client).create()


def add_annotators(client: Any, workspace: Any, names: list[str] | None) -> list[str]:
    """Make annotators members of `workspace` (all users with the annotator role, or
    `names`), so they see its datasets; returns the names added now."""
    users = {u.username: u for u in client.users}
    if names is None:
        wanted = sorted(n for n, u in users.items() if role_of(u) == "annotator")
    else:
        unknown = [n for n in names if n not in users]
        if unknown:
            raise ReviewError(
                f"Argilla has no user {', '.join(map(repr, unknown))}",
                hint=f"Known users: {', '.join(sorted(users))}. Create them in Argilla first, "
                "or fix the annotators list.",
            )
        wanted = list(names)
    members = {u.username for u in workspace.users}
    added = [n for n in wanted if n not in members]
    for name in added:
        workspace.add_user(name)
    return added


def settings_signature(settings: Any) -> dict[str, Any]:
    """What must match for an existing dataset to be reused: names, kinds, labels, values."""
    questions = {}
    for q in settings.questions:
        questions[q.name] = (type(q).__name__, sorted(map(str, getattr(q, "labels", None) or [])))
    return {
        "fields": {f.name: type(f).__name__ for f in settings.fields},
        "questions": questions,
        "metadata": {m.name: type(m).__name__ for m in settings.metadata},
    }


def ensure_dataset(client: Any, name: str, workspace: Any, settings: Any) -> Any:
    """The dataset, created with `settings`, or the existing one when its shape matches
    (its task distribution follows `settings`)."""
    import argilla as rg

    existing = client.datasets(name, workspace=workspace.name)
    if existing is None:
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create()
    want, have = settings_signature(settings), settings_signature(existing.settings)
    if want != have:
        differ = [k for k in want if want[k] != have[k]]
        raise ReviewError(
            f"Argilla dataset {name!r} exists with different settings ({', '.join(differ)})",
            hint="Use another --dataset name, or delete that dataset in Argilla first.",
        )
    wanted = settings.distribution.min_submitted
    if existing.settings.distribution.min_submitted != wanted:
        existing.settings.distribution = rg.TaskDistribution(min_submitted=wanted)
        try:
            existing.update()
        except Exception as exc:
            raise ReviewError(
                f"cannot change {name!r} to {wanted} reviews per record: {exc}",
                hint="Argilla refuses once responses exist: push to a new --dataset.",
            ) from exc
    return existing
