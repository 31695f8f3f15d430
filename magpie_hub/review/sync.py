"""Human review in Argilla: push a sample of a build, report progress, pull reviews back.

Records carry the row `uuid` as their id, so pushing again adds only new rows. Pulled
responses are archived in BUILD/reviews/<workspace>.<dataset>.json, merged with what
earlier pulls saw (nothing is ever lost), and aggregated per row into the `reviewed`
view (data/reviewed/), which `magpie-hub push` publishes as its own config.
"""

from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magpie_hub.build import BuildFolder, read_json, write_json
from magpie_hub.errors import ReviewError, in_chain, network_errors
from magpie_hub.plugins import get_registry

DEFAULT_WORKSPACE = "magpie-hub"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReviewPush:
    dataset: str
    workspace: str
    url: str
    added: int
    already_there: int
    sampled: int


@dataclass(frozen=True)
class ReviewPull:
    dataset: str
    reviewed_rows: int
    responses: int
    reviewers: int
    view: str


def connect(api_url: str | None = None, api_key: str | None = None) -> Any:
    """An Argilla client from arguments or ARGILLA_API_URL / ARGILLA_API_KEY."""
    import argilla as rg
    import httpx

    url = api_url or os.environ.get("ARGILLA_API_URL")
    key = api_key or os.environ.get("ARGILLA_API_KEY")
    if url and not key:
        raise ReviewError(
            f"no API key for the Argilla server at {url}",
            hint="Set ARGILLA_API_KEY to the key of an owner or admin "
            "(`scripts/argilla-server.sh start` prints it for a local server).",
        )
    if not url or not key:
        raise ReviewError(
            "no Argilla server configured",
            hint="Set ARGILLA_API_URL and ARGILLA_API_KEY (`scripts/argilla-server.sh start` "
            "prints both for a local server).",
        )
    try:
        httpx.get(f"{url.rstrip('/')}/api/_status", timeout=10)
    except httpx.HTTPError as exc:
        raise ReviewError(
            f"cannot reach the Argilla server at {url} ({type(exc).__name__})",
            hint="Start it (`scripts/argilla-server.sh start`) or fix ARGILLA_API_URL.",
        ) from exc
    try:
        return rg.Argilla(api_url=url, api_key=key)
    except Exception as exc:
        raise ReviewError(
            f"the Argilla server at {url} rejected the API key",
            hint="Use the key of an owner or admin (ARGILLA_API_KEY).",
        ) from exc


def stratified_sample(
    rows: list[dict[str, Any]], n: int | None, column: str | None, seed: int
) -> list[dict[str, Any]]:
    """`n` rows chosen with `seed`; with `column`, each value keeps its share of the rows
    (largest remainders), so the sample has the proportions of the build."""
    if n is None or n >= len(rows):
        return list(rows)
    rng = random.Random(seed)
    if column is None:
        return sorted(rng.sample(rows, n), key=rows.index)
    if rows and column not in rows[0]:
        raise ReviewError(f"no column {column!r} to stratify by", hint=f"Columns: {list(rows[0])}")
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row.get(column)].append(row)
    exact = {k: n * len(v) / len(rows) for k, v in groups.items()}
    take = {k: int(q) for k, q in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - take[k]), str(k)))[: n - sum(take.values())]:
        take[k] += 1
    chosen = [r for k in sorted(groups, key=str) for r in rng.sample(groups[k], take[k])]
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(chosen, key=lambda r: order[id(r)])


def _workspace(client: Any, name: str, create: bool) -> Any:
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


def _dataset(client: Any, name: str, workspace: Any, settings: Any) -> Any:
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
    return existing


def review_push(
    build: Path,
    dataset: str,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    sample: int | None = None,
    stratify_by: str | None = None,
    seed: int = 0,
    create_workspace: bool = False,
    client: Any = None,
    on_progress: Progress | None = None,
) -> ReviewPush:
    """Push (a sample of) BUILD's rows as records; rows already in the dataset are skipped."""
    manifest = BuildFolder(build).complete_manifest()
    spec = _spec(manifest)
    rows = stratified_sample(BuildFolder(build).rows(), sample, stratify_by, seed)
    client = client or connect()
    ds = _dataset(
        client, dataset, _workspace(client, workspace, create_workspace), spec.settings(rows)
    )
    present = {str(r.id) for r in ds.records(with_suggestions=False, with_vectors=False)}
    new = [spec.record(row) for row in rows if row["uuid"] not in present]
    for start in range(0, len(new), PUSH_BATCH):
        batch = new[start : start + PUSH_BATCH]
        with _server_lost(client.api_url, start, len(new)):
            _log(ds, batch)
        if on_progress:
            on_progress(start + len(batch), len(new))
    url = f"{client.api_url.rstrip('/')}/dataset/{ds.id}/annotation-mode"
    return ReviewPush(dataset, workspace, url, len(new), len(rows) - len(new), len(rows))


PUSH_BATCH = 256
"""Records per request; a push that stops keeps every batch the server acknowledged."""


@contextmanager
def _server_lost(url: str, done: int, total: int) -> Iterator[None]:
    """A server that stops answering mid-push is a `ReviewError` saying how far it got."""
    try:
        yield
    except Exception as exc:
        lost = in_chain(exc, network_errors())
        if lost is None:
            raise
        raise ReviewError(
            f"the Argilla server at {url} stopped answering after {done} of {total} new "
            f"records ({type(lost).__name__})",
            hint="Start it again and re-run the same command: records already pushed are skipped.",
        ) from exc


def _log(ds: Any, batch: list[dict[str, Any]]) -> None:
    import argilla as rg

    ds.records.log(
        [
            rg.Record(
                id=r["id"],
                fields=r["fields"],
                metadata=r["metadata"],
                vectors=r["vectors"] or None,
                suggestions=[rg.Suggestion(q, v, agent=a) for q, v, a in r["suggestions"]],
            )
            for r in batch
        ]
    )


def _spec(manifest: dict[str, Any]) -> Any:
    recipe = manifest.get("recipe", "")
    specs = get_registry().review_specs
    if recipe not in specs:
        raise ReviewError(
            f"recipe {recipe!r} has no review settings",
            hint="Its plugin must implement the register_review_specs hook.",
        )
    return specs[recipe]


def _responses(client: Any, dataset: str, workspace: str) -> Iterable[dict[str, Any]]:
    ds = client.datasets(dataset, workspace=workspace)
    if ds is None:
        raise ReviewError(f"Argilla has no dataset {dataset!r} in workspace {workspace!r}")
    names = {str(u.id): u.username for u in client.users}
    for record in ds.records(with_responses=True, with_suggestions=False, with_vectors=False):
        for r in record.responses:
            yield {
                "uuid": str(record.id),
                "user": names.get(str(r.user_id), str(r.user_id)),
                "question": r.question_name,
                "value": r.value,
                "status": str(getattr(r.status, "value", r.status)),
            }


def review_status(dataset: str, *, workspace: str = DEFAULT_WORKSPACE, client: Any = None) -> dict:
    """Progress per question and per annotator."""
    client = client or connect()
    ds = client.datasets(dataset, workspace=workspace)
    if ds is None:
        raise ReviewError(f"Argilla has no dataset {dataset!r} in workspace {workspace!r}")
    total = sum(1 for _ in ds.records(with_suggestions=False, with_vectors=False))
    per_question: dict[str, set[str]] = defaultdict(set)
    per_user: dict[str, Counter[str]] = defaultdict(Counter)
    seen: set[tuple[str, str]] = set()
    for r in _responses(client, dataset, workspace):
        if r["status"] == "submitted":
            per_question[r["question"]].add(r["uuid"])
        if (r["uuid"], r["user"]) not in seen:
            seen.add((r["uuid"], r["user"]))
            per_user[r["user"]][r["status"]] += 1
    questions = [q.name for q in ds.settings.questions]
    return {
        "dataset": dataset,
        "records": total,
        "questions": {
            q: {"records_answered": len(per_question[q]), "of": total} for q in questions
        },
        "annotators": {u: dict(c) for u, c in sorted(per_user.items())},
    }


def review_pull(
    build: Path, dataset: str, *, workspace: str = DEFAULT_WORKSPACE, client: Any = None
) -> ReviewPull:
    """Merge the submitted reviews into BUILD as the `reviewed` view."""
    folder = BuildFolder(build)
    folder.complete_manifest()
    client = client or connect()
    with folder.writer():
        return _pull(folder, dataset, workspace, client)


def _pull(folder: BuildFolder, dataset: str, workspace: str, client: Any) -> ReviewPull:
    manifest = folder.complete_manifest()
    archive = folder.review_archive(workspace, dataset)
    merged: dict[str, dict[str, Any]] = (
        read_json(archive, "the review archive", hint=f"Restore or delete {archive}.")
        if archive.exists()
        else {}
    )
    for r in _responses(client, dataset, workspace):
        merged[f"{r['uuid']}|{r['user']}|{r['question']}"] = r
    write_json(archive, dict(sorted(merged.items())), indent=1)

    from datasets import Features

    from magpie_hub.review.view import reviewed_view

    features = Features.from_arrow_schema(folder.schema())
    view = reviewed_view(folder.rows(), list(merged.values()), features)
    counts = folder.write_views({"reviewed": view})
    manifest.setdefault("views", {}).update(counts)
    folder.write_manifest(manifest)
    reviewers = len({r["user"] for r in merged.values()})
    return ReviewPull(dataset, len(view.rows), len(merged), reviewers, "data/reviewed")
