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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magpie_hub.build import BuildFolder, read_json, write_json
from magpie_hub.errors import ReviewError, in_chain, network_errors
from magpie_hub.plugins import get_registry
from magpie_hub.registry import ReviewOptions
from magpie_hub.review.agreement import machine_labels, report
from magpie_hub.review.view import human_answers
from magpie_hub.review.workspace import add_annotators, ensure_dataset, ensure_workspace, role_of

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
    members_added: list[str] = field(default_factory=list)
    """Annotators made members of the workspace by this push."""


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
        client = rg.Argilla(api_url=url, api_key=key)
    except Exception as exc:
        raise ReviewError(
            f"the Argilla server at {url} rejected the API key",
            hint="Use the key of an owner or admin (ARGILLA_API_KEY).",
        ) from exc
    me = client.me
    if role_of(me) not in ("owner", "admin"):
        raise ReviewError(
            f"ARGILLA_API_KEY belongs to {me.username!r}, an {role_of(me)}: push, status and "
            "pull need an owner or admin (annotators review in the browser)",
            hint="Use an owner's or admin's key (`scripts/argilla-server.sh start` prints "
            "the owner's for a local server).",
        )
    return client


def stratified_sample(
    rows: Sequence[dict[str, Any]], n: int | None, column: str | None, seed: int
) -> list[dict[str, Any]]:
    """`n` rows chosen with `seed`; with `column`, each value keeps its share of the rows
    (largest remainders), so the sample has the proportions of the build. Only `column`
    and the chosen rows are read from a build's `ParquetRows`."""
    total = len(rows)
    if n is None or n >= total:
        return list(rows)
    rng = random.Random(seed)
    if column is None:
        return [rows[i] for i in sorted(rng.sample(range(total), n))]
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, value in enumerate(_column(rows, column)):
        groups[value].append(i)
    exact = {k: n * len(v) / total for k, v in groups.items()}
    take = {k: int(q) for k, q in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - take[k]), str(k)))[: n - sum(take.values())]:
        take[k] += 1
    chosen = [i for k in sorted(groups, key=str) for i in rng.sample(groups[k], take[k])]
    return [rows[i] for i in sorted(chosen)]


def _column(rows: Sequence[dict[str, Any]], column: str) -> Iterator[Any]:
    """One column's values in row order; a build's rows are read for that column only."""
    from magpie_hub.row_streams import ParquetRows

    if isinstance(rows, ParquetRows):
        import pyarrow.parquet as pq

        if not rows.select([column]).columns:
            names = pq.read_schema(rows.paths[0]).names
            raise ReviewError(f"no column {column!r} to stratify by", hint=f"Columns: {names}")
        return (row[column] for row in rows.select([column]))
    if rows and column not in rows[0]:
        raise ReviewError(f"no column {column!r} to stratify by", hint=f"Columns: {list(rows[0])}")
    return (row.get(column) for row in rows)


def review_push(
    build: Path,
    dataset: str,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    sample: int | None = None,
    stratify_by: str | None = None,
    seed: int = 0,
    create_workspace: bool = False,
    annotators: list[str] | None = None,
    min_submitted: int = 1,
    suggestions: bool = False,
    client: Any = None,
    on_progress: Progress | None = None,
) -> ReviewPush:
    """Push (a sample of) BUILD's rows as records; rows already in the dataset are skipped.
    The workspace's annotators (every user with that role, or `annotators`) become members."""
    if min_submitted < 1:
        raise ReviewError(f"--min-submitted must be 1 or more, not {min_submitted}")
    manifest = BuildFolder(build).complete_manifest()
    spec = _spec(manifest)
    rows = stratified_sample(BuildFolder(build).rows(), sample, stratify_by, seed)
    options = ReviewOptions(
        recipe=spec.name,
        recipe_description=_recipe_description(spec.name),
        min_submitted=min_submitted,
        suggestions=suggestions,
        seed=seed,
    )
    client = client or connect()
    ws = ensure_workspace(client, workspace, create_workspace)
    members = add_annotators(client, ws, annotators)
    ds = ensure_dataset(client, dataset, ws, spec.settings(rows, options))
    present = {str(r.id) for r in ds.records(with_suggestions=False, with_vectors=False)}
    new = [spec.record(row, options) for row in rows if row["uuid"] not in present]
    for start in range(0, len(new), PUSH_BATCH):
        batch = new[start : start + PUSH_BATCH]
        with _server_lost(client.api_url, start, len(new)):
            _log(ds, batch)
        if on_progress:
            on_progress(start + len(batch), len(new))
    url = f"{client.api_url.rstrip('/')}/dataset/{ds.id}/annotation-mode"
    return ReviewPush(dataset, workspace, url, len(new), len(rows) - len(new), len(rows), members)


def _recipe_description(name: str) -> str:
    recipes = get_registry().recipes
    return recipes[name].description if name in recipes else ""


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


def _dataset(client: Any, dataset: str, workspace: str) -> Any:
    ds = client.datasets(dataset, workspace=workspace)
    if ds is None:
        raise ReviewError(f"Argilla has no dataset {dataset!r} in workspace {workspace!r}")
    return ds


def _responses(client: Any, ds: Any, records: list[Any]) -> Iterator[dict[str, Any]]:
    names = {str(u.id): u.username for u in client.users}
    for record in records:
        a_is = (record.metadata or {}).get("ab_order")
        for r in record.responses:
            yield {
                "uuid": str(record.id),
                "user": names.get(str(r.user_id), str(r.user_id)),
                "question": r.question_name,
                "value": r.value,
                "status": str(getattr(r.status, "value", r.status)),
                **({"ab_order": a_is} if a_is else {}),
            }


def _records(ds: Any) -> list[Any]:
    return list(ds.records(with_responses=True, with_suggestions=False, with_vectors=False))


def review_status(dataset: str, *, workspace: str = DEFAULT_WORKSPACE, client: Any = None) -> dict:
    """Progress per question and per annotator, records complete, and agreement."""
    client = client or connect()
    ds = _dataset(client, dataset, workspace)
    records = _records(ds)
    responses = list(_responses(client, ds, records))
    per_question: dict[str, set[str]] = defaultdict(set)
    per_user: dict[str, Counter[str]] = defaultdict(Counter)
    seen: set[tuple[str, str]] = set()
    for r in responses:
        if r["status"] == "submitted":
            per_question[r["question"]].add(r["uuid"])
        if (r["uuid"], r["user"]) not in seen:
            seen.add((r["uuid"], r["user"]))
            per_user[r["user"]][r["status"]] += 1
    total = len(records)
    machine = {str(r.id): machine_labels(r.metadata or {}) for r in records}
    return {
        "dataset": dataset,
        "records": total,
        "completed": sum(
            1 for r in records if str(getattr(r.status, "value", r.status)) == "completed"
        ),
        "min_submitted": ds.settings.distribution.min_submitted,
        "questions": {
            q.name: {"records_answered": len(per_question[q.name]), "of": total}
            for q in ds.settings.questions
        },
        "annotators": {u: dict(c) for u, c in sorted(per_user.items())},
        "agreement": report(human_answers(responses), machine),
    }


def review_progress(
    dataset: str, *, workspace: str = DEFAULT_WORKSPACE, client: Any = None
) -> dict[str, int]:
    """{total, completed, pending} records, from the server's own count (no listing)."""
    client = client or connect()
    progress = _dataset(client, dataset, workspace).progress()
    return {k: int(progress.get(k, 0)) for k in ("total", "completed", "pending")}


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
    ds = _dataset(client, dataset, workspace)
    for r in _responses(client, ds, _records(ds)):
        merged[f"{r['uuid']}|{r['user']}|{r['question']}"] = r
    write_json(archive, dict(sorted(merged.items())), indent=1)

    from datasets import Features

    from magpie_hub.review.view import reviewed_view

    features = Features.from_arrow_schema(folder.schema())
    rows = folder.rows()
    responses = list(merged.values())
    view = reviewed_view(rows, responses, features)
    counts = folder.write_views({"reviewed": view})
    manifest.setdefault("views", {}).update(counts)
    machine = {row["uuid"]: machine_labels(row) for row in rows}
    manifest["review"] = {
        "dataset": dataset,
        "workspace": workspace,
        "reviewed_rows": len(view.rows),
        "reviewers": view.counts["reviewers"],
        "agreement": report(human_answers(responses), machine),
    }
    folder.write_manifest(manifest)
    reviewers = len({r["user"] for r in merged.values()})
    return ReviewPull(dataset, len(view.rows), len(merged), reviewers, "data/reviewed")
