"""Run argilla-server 2.8.0 for scripts/argilla-server.sh, in one process.

    ARGILLA_VENV/bin/python scripts/argilla_local.py --home HOME --port PORT [--reindex]

Runs inside argilla-server's own virtual environment (never magpie-hub's) with the
ARGILLA_* settings exported by the shell script. In order, with argilla-server's own code:

1. migrates the database (what `python -m argilla_server database migrate` does);
2. makes sure the users `owner`, `annotator` and `annotator2` exist with the API key and
   the password kept in HOME/<user>.key and HOME/<user>.password (the files win: a user
   whose key or password differs is updated);
3. with --reindex (the database existed before this start), rebuilds the search indices
   from the database, as `python -m argilla_server search-engine reindex` does: osmem keeps
   them in memory only, so a restarted server would otherwise answer `no such index`;
4. when the search engine is osmem, swaps in OsmemOpenSearchEngine (below);
5. serves `argilla_server:app` with uvicorn.

Doing 1-3 in the serving process saves a Python start of the whole app (about 6 s) each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

USERS = (("owner", "owner"), ("annotator", "annotator"), ("annotator2", "annotator"))


def say(message: str) -> None:
    # Not `logging`: alembic's fileConfig (step 1) disables the loggers that exist by then.
    print(f"argilla_local: {message}", file=sys.stderr, flush=True)


def is_osmem(url: str) -> bool:
    """Whether the OpenSearch-compatible server at `url` is osmem-server (its root says so)."""
    with urllib.request.urlopen(url.rstrip("/") + "/", timeout=10) as answer:
        info = json.load(answer)
    build = info.get("version", {}).get("build_hash")
    return info.get("cluster_name") == "osmem" or build == "osmem"


def make_osmem_engine() -> type:
    """OpenSearchEngine with its three scripted updates done as read, change, write.

    Why: argilla-server's BaseElasticAndOpenSearchEngine (search_engine/commons.py) keeps
    each record's responses inside the record's search document and changes them with
    Painless scripts sent to the `_update` API (`_update_document_request` with a body
    `{"script": ...}`):

    - `update_record_response` (called by contexts/datasets.py `create_response`,
      `update_response` and `upsert_response`, that is POST /api/v1/records/{id}/responses,
      PUT /api/v1/responses/{id} and POST /api/v1/me/responses/bulk: the UI's Submit,
      Save as draft and Discard) removes the response with the same id and appends it;
    - `delete_record_response` (DELETE /api/v1/responses/{id}) removes it;
    - `delete_record_suggestion` (DELETE .../suggestions) removes a key of `suggestions`.

    osmem-server 0.1.6 implements `_update` with a partial `doc` but answers any
    `script` with HTTP 400 `update with script is not supported by osmem`; opensearch-py
    raises RequestError and FastAPI turns it into HTTP 500. The database has already
    committed the response by then (so it is stored), but the search document is not
    updated, so filters by response status and the progress counters stay stale.
    `partial_record_update` (the record's status, via `{"doc": ...}`) and
    `update_record_suggestion` (also `{"doc": ...}`) work on osmem and are left alone, as
    are the progress/metrics aggregations (value_count and terms on `responses.status`).

    The replacement does what each script does in Python: GET the document, change its
    `_source`, and index it back with `if_seq_no`/`if_primary_term`, retrying when another
    write got in between (two annotators answering one record at once). Only used when the
    search engine is osmem; a real OpenSearch keeps the upstream scripted updates.
    """
    from argilla_server.search_engine.commons import es_index_name_for_dataset
    from argilla_server.search_engine.opensearch import OpenSearchEngine
    from opensearchpy.exceptions import ConflictError

    class OsmemOpenSearchEngine(OpenSearchEngine):
        attempts = 10

        async def _rewrite_document(
            self, index_name: str, id: str, change: Callable[[dict[str, Any]], None]
        ) -> None:
            for attempt in range(self.attempts):
                got = await self.client.get(index=index_name, id=id)
                source = got["_source"]
                change(source)
                try:
                    await self.client.index(
                        index=index_name,
                        id=id,
                        body=source,
                        refresh=True,
                        if_seq_no=got["_seq_no"],
                        if_primary_term=got["_primary_term"],
                    )
                    return
                except ConflictError:
                    if attempt == self.attempts - 1:
                        raise
                    await asyncio.sleep(0.01 * (attempt + 1))

        async def update_record_response(self, response: Any) -> None:
            record = response.record
            es_response = self._map_record_response_to_es(response)

            def replace(source: dict[str, Any]) -> None:
                kept = [r for r in source.get("responses") or [] if r.get("id") != str(response.id)]
                source["responses"] = [*kept, es_response]

            await self._rewrite_document(
                es_index_name_for_dataset(record.dataset), str(record.id), replace
            )

        async def delete_record_response(self, response: Any) -> None:
            record = response.record

            def remove(source: dict[str, Any]) -> None:
                if source.get("responses") is not None:
                    source["responses"] = [
                        r for r in source["responses"] if r.get("id") != str(response.id)
                    ]

            await self._rewrite_document(
                es_index_name_for_dataset(record.dataset), str(record.id), remove
            )

        async def delete_record_suggestion(self, suggestion: Any) -> None:
            name = suggestion.question.name

            def remove(source: dict[str, Any]) -> None:
                (source.get("suggestions") or {}).pop(name, None)

            await self._rewrite_document(
                es_index_name_for_dataset(suggestion.record.dataset),
                str(suggestion.record_id),
                remove,
            )

    return OsmemOpenSearchEngine


def migrate() -> None:
    import logging

    from argilla_server.cli.database.migrate import migrate_db

    migrate_db(revision="head")
    # alembic's logging.config.fileConfig disabled every logger that existed (argilla-server's
    # own among them); `python -m argilla_server database migrate` runs in a process of its
    # own, so the server never sees that. Undo it here.
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False


async def ensure_users(home: Path) -> None:
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole

    async with AsyncSessionLocal() as db:
        for username, role in USERS:
            key = (home / f"{username}.key").read_text().strip()
            password = (home / f"{username}.password").read_text().strip()
            user = await accounts.get_user_by_username(db, username)
            if user is None:
                await User.create(
                    db,
                    first_name=username,
                    username=username,
                    role=UserRole(role),
                    api_key=key,
                    password_hash=accounts.hash_password(password),
                    autocommit=False,
                )
                say(f"created user {username} ({role})")
                continue
            changes: dict[str, str] = {}
            if user.api_key != key:
                changes["api_key"] = key
            if not accounts.verify_password(password, user.password_hash):
                changes["password_hash"] = accounts.hash_password(password)
            if changes:
                await user.update(db, autocommit=False, **changes)
                say(f"user {username}: {', '.join(sorted(changes))} set from the files in {home}")
        await db.commit()


async def reindex() -> None:
    from argilla_server.cli.search_engine.reindex import _reindex

    await _reindex(None)


async def prepare(home: Path, with_reindex: bool) -> None:
    from argilla_server.database import async_engine

    try:
        await ensure_users(home)
        if with_reindex:
            say("rebuilding the search indices from the database")
            await reindex()
    finally:
        # Pooled connections belong to this event loop; uvicorn runs its own.
        await async_engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reindex", action="store_true")
    args = parser.parse_args(argv)

    migrate()
    asyncio.run(prepare(args.home, args.reindex))

    from argilla_server.search_engine.base import SearchEngine
    from argilla_server.settings import settings

    patch = os.environ.get("MAGPIE_HUB_OSMEM_PATCH") != "0"  # 0: upstream code, to compare
    if patch and settings.search_engine == "opensearch" and is_osmem(settings.elasticsearch):
        SearchEngine.register(engine_name="opensearch")(make_osmem_engine())
        say("osmem: response and suggestion updates done without scripts")

    import uvicorn

    uvicorn.run("argilla_server:app", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
