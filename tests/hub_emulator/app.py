"""An ASGI app speaking the Hugging Face Hub's HTTP protocol for dataset repositories.

It serves what the unmodified `huggingface_hub` and `datasets` clients call to push and
load a dataset (stack-notes lists the endpoints), checks requests strictly (auth header,
NDJSON commit lines and their fields, existing revisions) and answers with Hub-shaped
errors (`X-Error-Code`, `{"error": ...}`). Tests can inject failures and count calls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .files import FileRoutes
from .git_store import GitStore, StoreError
from .http import error, json_body, now

Handler = Any
REPO = r"(?P<repo>[^/]+/[^/]+)"


@dataclass
class Fault:
    """Answer `status` to calls of `action` after the first `after` calls succeeded; with
    `delay`, first wait that many seconds (status 0: then serve the call normally). With
    `drop` "before" or "after" (handling the call), the connection is dropped mid-response."""

    action: str
    after: int
    status: int
    times: int = 1_000_000
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: str | None = None


class DroppedResponse:
    """Starts a response, sends one byte of a promised body, then aborts the connection."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"4096")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionAbortedError("the Hub emulator dropped the connection (injected fault)")


class HubEmulator(FileRoutes):
    def __init__(self, root: Path, users: dict[str, str], orgs: dict[str, list[str]] | None = None):
        self.store = GitStore(root)
        self.tokens = users  # token -> user name
        self.orgs = orgs or {}  # user -> organisations
        self.private: dict[str, bool] = {}
        self.calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.base_url = ""
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/api/whoami-v2"), self.whoami),
            ("POST", re.compile(r"/api/repos/create"), self.create_repo),
            ("POST", re.compile(r"/api/validate-yaml"), self.validate_yaml),
            ("GET", re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)"), self.repo_info),
            (
                "GET",
                re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)"),
                self.repo_info,
            ),
            ("GET", re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)/refs"), self.list_refs),
            (
                "POST",
                re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)"),
                self.preupload,
            ),
            (
                "POST",
                re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)"),
                self.commit,
            ),
            (
                "POST",
                re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)/branch/(?P<rev>[^/]+)"),
                self.branch,
            ),
            (
                "POST",
                re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)"),
                self.tag,
            ),
            (
                "GET",
                re.compile(
                    r"/api/datasets/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?"
                ),
                self.tree,
            ),
            (
                "POST",
                re.compile(r"/api/datasets/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)"),
                self.paths_info,
            ),
            (
                "POST",
                re.compile(r"/datasets/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch"),
                self.lfs_batch,
            ),
            ("PUT", re.compile(rf"/lfs/upload/{REPO}/(?P<oid>[0-9a-f]{{64}})"), self.lfs_put),
            ("POST", re.compile(r"/lfs/verify/(?P<repo>[^/]+/[^/]+)"), self.lfs_verify),
            (
                "HEAD",
                re.compile(r"/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
                self.resolve,
            ),
            (
                "GET",
                re.compile(r"/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
                self.resolve,
            ),
        ]

    # --- plumbing ------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw = scope.get("raw_path", scope["path"].encode()).decode().split("?", 1)[0]
        response = await self.dispatch(request, raw)
        await response(scope, receive, send)

    async def dispatch(self, request: Request, raw: str) -> Response:
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(raw)
            if match and method == request.method:
                params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                action = handler.__name__
                self.calls[action] += 1
                fault = self._fault(action)
                if fault and fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault and fault.drop == "before":
                    return DroppedResponse()  # type: ignore[return-value]
                if fault and fault.drop == "after":
                    with contextlib.suppress(StoreError):
                        await handler(request, **params)
                    return DroppedResponse()  # type: ignore[return-value]
                if fault and fault.status:
                    return error(
                        fault.status, f"injected failure of {action}", headers=fault.headers
                    )
                try:
                    return await handler(request, **params)
                except StoreError as exc:
                    return error(exc.status, str(exc), exc.code)
        return error(404, f"no route for {request.method} {raw}")

    def _fault(self, action: str) -> Fault | None:
        for fault in self.faults:
            if fault.action == action and self.calls[action] > fault.after and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def user(self, request: Request, *, required: bool) -> str | None:
        auth = request.headers.get("authorization")
        if auth is None:
            if required:
                raise StoreError(401, "Invalid username or password.")
            return None
        if not auth.startswith("Bearer "):
            raise StoreError(400, "Authorization header must be 'Bearer <token>'")
        user = self.tokens.get(auth.removeprefix("Bearer "))
        if user is None:
            raise StoreError(401, "Invalid credentials in Authorization header")
        return user

    def can_write(self, user: str, namespace: str) -> bool:
        return namespace == user or namespace in self.orgs.get(user, [])

    def readable(self, request: Request, repo: str) -> None:
        if not self.store.exists(repo):
            raise StoreError(404, "Repository not found", "RepoNotFound")
        if self.private.get(repo):
            user = self.user(request, required=False)
            if user is None or not self.can_write(user, repo.split("/")[0]):
                raise StoreError(404, "Repository not found", "RepoNotFound")

    def writable(self, request: Request, repo: str) -> None:
        user = self.user(request, required=True)
        assert user is not None
        if not self.store.exists(repo):
            raise StoreError(404, "Repository not found", "RepoNotFound")
        if not self.can_write(user, repo.split("/")[0]):
            raise StoreError(403, f"You don't have the rights to write to {repo}")

    # --- account and repositories -------------------------------------------
    async def whoami(self, request: Request) -> Response:
        user = self.user(request, required=True)
        orgs = [{"name": o, "type": "org"} for o in self.orgs.get(user or "", [])]
        auth = {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}
        return JSONResponse({"type": "user", "name": user, "orgs": orgs, "auth": auth})

    async def create_repo(self, request: Request) -> Response:
        user = self.user(request, required=True)
        body = await json_body(request, required=("name", "type"))
        if body["type"] != "dataset":
            raise StoreError(400, "this emulator serves dataset repositories only")
        namespace = body.get("organization") or user
        repo = f"{namespace}/{body['name']}"
        if not re.fullmatch(r"[\w.-]{1,96}", body["name"]) or not self.can_write(
            user or "", namespace
        ):
            raise StoreError(
                403, f"You don't have the rights to create a dataset under {namespace}"
            )
        if self.store.exists(repo):
            return error(
                409, "You already created this dataset repo", extra={"url": self.url(repo)}
            )
        visibility = body.get("visibility", "private" if body.get("private") else "public")
        if visibility not in ("public", "private"):
            raise StoreError(400, f"invalid visibility {visibility!r}")
        self.store.create(repo)
        self.private[repo] = visibility == "private"
        return JSONResponse({"url": self.url(repo), "name": repo, "id": repo})

    async def validate_yaml(self, request: Request) -> Response:
        body = await json_body(request, required=("content", "repoType"))
        match = re.match(r"^---\n(.*?)\n---", body["content"], re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as exc:
            return JSONResponse({"error": f"Invalid YAML: {exc}"}, status_code=400)
        if meta is not None and not isinstance(meta, dict):
            return JSONResponse({"error": "The metadata must be a mapping"}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    async def repo_info(self, request: Request, repo: str, rev: str = "main") -> Response:
        self.readable(request, repo)
        sha = self.store.resolve(repo, rev)
        files = [e for e in self.store.entries(repo, sha) if e.kind == "file"]
        card = next((e for e in files if e.path == "README.md"), None)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
            "id": repo,
            "author": repo.split("/")[0],
            "sha": sha,
            "private": self.private.get(repo, False),
            "disabled": False,
            "gated": False,
            "lastModified": now(),
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "siblings": [{"rfilename": e.path} for e in files],
        }
        if card:
            match = re.match(r"^---\n(.*?)\n---", self.store.content(repo, card).decode(), re.S)
            if match:
                info["cardData"] = yaml.safe_load(match.group(1))
        return JSONResponse(info)

    async def list_refs(self, request: Request, repo: str) -> Response:
        self.readable(request, repo)
        refs = self.store.refs(repo)
        out = {
            kind: [
                {
                    "name": n,
                    "ref": f"refs/{'heads' if kind == 'branches' else 'tags'}/{n}",
                    "targetCommit": s,
                }
                for n, s in refs[kind]
            ]
            for kind in ("branches", "tags")
        }
        return JSONResponse({**out, "converts": []})

    # --- writes ---------------------------------------------------------------
    async def preupload(self, request: Request, repo: str, rev: str) -> Response:
        self.writable(request, repo)
        body = await json_body(request, required=("files",))
        try:
            sha = self.store.resolve(repo, rev)
        except StoreError:
            sha = None
        answer = []
        for item in body["files"]:
            missing = {"path", "sample", "size"} - set(item)
            if missing:
                raise StoreError(400, f"preupload file entry lacks {sorted(missing)}")
            base64.b64decode(item["sample"], validate=True)
            lfs = item["path"].endswith((".parquet", ".png")) or item["size"] > 10 * 1024 * 1024
            existing = self.store.entry(repo, sha, item["path"]) if sha else None
            oid = (existing.lfs[0] if existing.lfs else existing.oid) if existing else None
            answer.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        return JSONResponse({"files": answer, "commitOid": sha})

    async def commit(self, request: Request, repo: str, rev: str) -> Response:
        self.writable(request, repo)
        if request.headers.get("content-type") != "application/x-ndjson":
            raise StoreError(400, "the commit body must be application/x-ndjson")
        lines = [line for line in (await request.body()).decode().splitlines() if line.strip()]
        try:
            items = [json.loads(line) for line in lines]
        except json.JSONDecodeError as exc:
            raise StoreError(400, f"malformed NDJSON line: {exc}") from exc
        if not items or items[0].get("key") != "header":
            raise StoreError(400, "the first NDJSON line must be the header")
        header = items[0]["value"]
        if not isinstance(header.get("summary"), str) or not header["summary"].strip():
            raise StoreError(400, "the commit header needs a summary")
        files, lfs_files, deletions = {}, {}, set()
        for item in items[1:]:
            key, value = item.get("key"), item.get("value") or {}
            path = value.get("path")
            if (
                not isinstance(path, str)
                or not path
                or path.startswith("/")
                or ".." in path.split("/")
            ):
                raise StoreError(400, f"invalid path in commit line: {item}")
            if key == "file":
                if value.get("encoding") != "base64" or not isinstance(value.get("content"), str):
                    raise StoreError(400, f"file line for {path} needs base64 content")
                files[path] = base64.b64decode(value["content"], validate=True)
            elif key == "lfsFile":
                if value.get("algo") != "sha256" or not re.fullmatch(
                    r"[0-9a-f]{64}", str(value.get("oid"))
                ):
                    raise StoreError(400, f"lfsFile line for {path} needs a sha256 oid")
                lfs_files[path] = (value["oid"], int(value["size"]))
            elif key in ("deletedFile", "deletedFolder"):
                deletions.add(path)
            else:
                raise StoreError(400, f"unknown commit line key {key!r}")
        if rev not in dict(self.store.refs(repo)["branches"]):
            raise StoreError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        message = header["summary"] + (
            f"\n\n{header['description']}" if header.get("description") else ""
        )
        sha = self.store.commit(
            repo, rev, message, files, lfs_files, deletions, header.get("parentCommit")
        )
        return JSONResponse(
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{self.url(repo)}/commit/{sha}",
                "hookOutput": "",
            }
        )

    async def branch(self, request: Request, repo: str, rev: str) -> Response:
        self.writable(request, repo)
        body = await json_body(request)
        start = self.store.resolve(repo, body.get("startingPoint") or "main")
        self.store.create_ref(repo, f"refs/heads/{rev}", start)
        return JSONResponse({})

    async def tag(self, request: Request, repo: str, rev: str) -> Response:
        self.writable(request, repo)
        body = await json_body(request, required=("tag",))
        self.store.create_ref(repo, f"refs/tags/{body['tag']}", self.store.resolve(repo, rev))
        return JSONResponse({})

    def url(self, repo: str) -> str:
        return f"{self.base_url}/datasets/{repo}"
