"""The emulator's file routes: the Git LFS upload protocol, and tree, paths-info and
resolve reads (with HTTP ranges, as `datasets` streams Parquet)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .git_store import Entry, GitStore, StoreError
from .http import json_body


class FileRoutes:
    """Mixed into HubEmulator, which provides the store, the auth checks and base_url."""

    store: GitStore
    base_url: str

    def readable(self, request: Request, repo: str) -> None:
        raise NotImplementedError

    def writable(self, request: Request, repo: str) -> None:
        raise NotImplementedError

    # --- LFS --------------------------------------------------------------------
    async def lfs_batch(self, request: Request, repo: str) -> Response:
        self.writable(request, repo)
        body = await json_body(request, required=("operation", "objects"))
        if body["operation"] != "upload":
            raise StoreError(400, "only the upload operation is served")
        objects = []
        for obj in body["objects"]:
            oid, size = obj["oid"], obj["size"]
            entry: dict[str, Any] = {"oid": oid, "size": size}
            if not self.store.has_lfs(repo, oid, size):  # objects already stored need no upload
                entry["actions"] = {
                    "upload": {"href": f"{self.base_url}/lfs/upload/{repo}/{oid}"},
                    "verify": {"href": f"{self.base_url}/lfs/verify/{repo}"},
                }
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    async def lfs_put(self, request: Request, repo: str, oid: str) -> Response:
        self.store.put_lfs(repo, oid, await request.body())
        return Response(status_code=200)

    async def lfs_verify(self, request: Request, repo: str) -> Response:
        body = await json_body(request, required=("oid", "size"))
        if not self.store.has_lfs(repo, body["oid"], body["size"]):
            raise StoreError(404, "object not found")
        return JSONResponse({})

    # --- reads --------------------------------------------------------------------
    def tree_item(self, repo: str, entry: Entry, sha: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": entry.kind,
            "oid": entry.oid,
            "size": entry.size,
            "path": entry.path,
        }
        if entry.lfs:
            item["lfs"] = {"oid": entry.lfs[0], "size": entry.lfs[1], "pointerSize": 130}
        return item

    async def tree(self, request: Request, repo: str, rev: str, path: str = "") -> Response:
        self.readable(request, repo)
        sha = self.store.resolve(repo, rev)
        recursive = request.query_params.get("recursive") in ("true", "True", "1")
        if path and self.store.entry(repo, sha, path.rstrip("/")) is None:
            raise StoreError(404, f"{path} does not exist at {rev}", "EntryNotFound")
        entries = self.store.entries(repo, sha, path, recursive=recursive)
        return JSONResponse([self.tree_item(repo, e, sha) for e in entries])

    async def paths_info(self, request: Request, repo: str, rev: str) -> Response:
        self.readable(request, repo)
        sha = self.store.resolve(repo, rev)
        form = await request.form() if "form" in request.headers.get("content-type", "") else None
        paths = (
            form.getlist("paths")
            if form
            else (await json_body(request, required=("paths",)))["paths"]
        )
        found = [e for p in paths if (e := self.store.entry(repo, sha, str(p).rstrip("/")))]
        return JSONResponse([self.tree_item(repo, e, sha) for e in found])

    async def resolve(self, request: Request, repo: str, rev: str, path: str) -> Response:
        self.readable(request, repo)
        sha = self.store.resolve(repo, rev)
        entry = self.store.entry(repo, sha, path)
        if entry is None or entry.kind != "file":
            raise StoreError(404, "Entry not found", "EntryNotFound")
        data = self.store.content(repo, entry)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{entry.oid}"', "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers |= {"X-Linked-Etag": f'"{entry.lfs[0]}"', "X-Linked-Size": str(entry.lfs[1])}
        status = 200
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", ""))
        if ranged:
            start = int(ranged.group(1))
            end = min(int(ranged.group(2)) if ranged.group(2) else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return Response(status_code=status, headers=headers)
        return Response(data, status_code=status, headers=headers)
