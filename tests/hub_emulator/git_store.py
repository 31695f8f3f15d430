"""Dataset repositories kept as real bare git repositories, plus a Git LFS object store.

Commits, branches and tags are git objects made with the `git` command line; LFS files
are committed as standard LFS pointer files and their content kept by sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
POINTER_RE = re.compile(
    r"^version https://git-lfs.github.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n$"
)
GITATTRIBUTES = (
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
)
ZERO = "0" * 40


class StoreError(Exception):
    """A request the store refuses; carries the Hub's HTTP status and error code."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class Entry:
    path: str
    kind: str  # "file" or "directory"
    oid: str
    size: int
    lfs: tuple[str, int] | None = None  # (sha256, size) of the content


class GitStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.lfs_dir = root / "lfs"
        self.lfs_dir.mkdir(parents=True, exist_ok=True)

    # --- repositories -------------------------------------------------------
    def path(self, repo_id: str) -> Path:
        return self.root / "datasets" / f"{repo_id}.git"

    def exists(self, repo_id: str) -> bool:
        return self.path(repo_id).exists()

    def git(
        self, repo_id: str, *args: str, input: bytes | None = None, env: dict | None = None
    ) -> str:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.path(repo_id)), *args],
            input=input,
            capture_output=True,
            env={**os.environ, **(env or {})},
        )
        if proc.returncode != 0:
            raise StoreError(500, f"git {args[0]} failed: {proc.stderr.decode()[:500]}")
        return proc.stdout.decode()

    def create(self, repo_id: str) -> str:
        path = self.path(repo_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--bare", "-q", "-b", "main", str(path)], check=True)
        # As the Hub does: the repository starts with one commit holding .gitattributes.
        return self.commit(
            repo_id, "main", "initial commit", {".gitattributes": GITATTRIBUTES.encode()}, {}, set()
        )

    # --- reads ---------------------------------------------------------------
    def resolve(self, repo_id: str, revision: str) -> str:
        for ref in (f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
            proc = subprocess.run(
                [
                    "git",
                    "--git-dir",
                    str(self.path(repo_id)),
                    "rev-parse",
                    "--verify",
                    "-q",
                    f"{ref}^{{commit}}",
                ],
                capture_output=True,
            )
            if proc.returncode == 0:
                return proc.stdout.decode().strip()
        raise StoreError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def refs(self, repo_id: str) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {"branches": [], "tags": []}
        listing = self.git(repo_id, "for-each-ref", "--format=%(refname) %(objectname)")
        for line in listing.splitlines():
            ref, sha = line.split()
            kind = "branches" if ref.startswith("refs/heads/") else "tags"
            out[kind].append((ref.split("/", 2)[2], sha))
        return out

    def entries(
        self, repo_id: str, commit: str, prefix: str = "", recursive: bool = True
    ) -> list[Entry]:
        args = ["ls-tree", "-l", "-t", "-z"] + (["-r"] if recursive else []) + [commit]
        if prefix:
            args += ["--", prefix.rstrip("/") + ("/" if not recursive else "")]
        result = []
        for item in self.git(repo_id, *args).split("\0"):
            if not item:
                continue
            meta, path = item.split("\t", 1)
            _, kind, oid, size = meta.split()
            if prefix and path == prefix.rstrip("/"):
                continue
            if kind == "tree":
                result.append(Entry(path, "directory", oid, 0))
                continue
            lfs = None
            if int(size) < 200:
                match = POINTER_RE.match(self.blob(repo_id, oid).decode(errors="replace"))
                if match:
                    lfs = (match.group(1), int(match.group(2)))
            result.append(Entry(path, "file", oid, lfs[1] if lfs else int(size), lfs))
        return result

    def entry(self, repo_id: str, commit: str, path: str) -> Entry | None:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        listing = (
            self.entries(repo_id, commit, parent, recursive=False)
            if parent
            else self.entries(repo_id, commit, recursive=False)
        )
        return next((e for e in listing if e.path == path), None)

    def blob(self, repo_id: str, oid: str) -> bytes:
        proc = subprocess.run(
            ["git", "--git-dir", str(self.path(repo_id)), "cat-file", "blob", oid],
            capture_output=True,
            check=True,
        )
        return proc.stdout

    def content(self, repo_id: str, entry: Entry) -> bytes:
        if entry.lfs:
            return self.lfs_path(repo_id, entry.lfs[0]).read_bytes()
        return self.blob(repo_id, entry.oid)

    def commit_count(self, repo_id: str, revision: str = "main") -> int:
        return int(
            self.git(repo_id, "rev-list", "--count", self.resolve(repo_id, revision)).strip()
        )

    # --- LFS -----------------------------------------------------------------
    def lfs_path(self, repo_id: str, oid: str) -> Path:
        """LFS objects are kept per repository, as the Hub does."""
        return self.lfs_dir / repo_id / oid[:2] / oid

    def has_lfs(self, repo_id: str, oid: str, size: int) -> bool:
        path = self.lfs_path(repo_id, oid)
        return path.exists() and path.stat().st_size == size

    def put_lfs(self, repo_id: str, oid: str, data: bytes) -> None:
        if hashlib.sha256(data).hexdigest() != oid:
            raise StoreError(400, "uploaded content does not match its sha256 oid")
        path = self.lfs_path(repo_id, oid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    # --- writes --------------------------------------------------------------
    def commit(
        self,
        repo_id: str,
        branch: str,
        message: str,
        files: dict[str, bytes],
        lfs_files: dict[str, tuple[str, int]],
        deletions: set[str],
        parent_commit: str | None = None,
    ) -> str:
        """One git commit on `branch`: add regular files and LFS pointers, delete paths."""
        ref = f"refs/heads/{branch}"
        try:
            parent = self.resolve(repo_id, branch)
        except StoreError:
            parent = None
        if parent_commit is not None and parent_commit != parent:
            raise StoreError(412, "A commit has happened since. Please refresh and try again.")
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self.git(repo_id, "read-tree", parent, env=env)
            present = set(self.git(repo_id, "ls-files", "-z", env=env).split("\0")) - {""}
            for path in sorted(deletions):
                gone = [p for p in present if p == path or p.startswith(path.rstrip("/") + "/")]
                if not gone:
                    raise StoreError(
                        404, f"A file with this name doesn't exist: {path}", "EntryNotFound"
                    )
                self.git(repo_id, "update-index", "--force-remove", "--", *gone, env=env)
            blobs = dict(files)
            for path, (oid, size) in lfs_files.items():
                if not self.has_lfs(repo_id, oid, size):
                    raise StoreError(422, f"LFS object {oid} for {path} was not uploaded")
                blobs[path] = POINTER.format(oid=oid, size=size).encode()
            for path, data in sorted(blobs.items()):
                sha = self.git(repo_id, "hash-object", "-w", "--stdin", input=data).strip()
                self.git(
                    repo_id, "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}", env=env
                )
            tree = self.git(repo_id, "write-tree", env=env).strip()
        args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
        who = {"GIT_AUTHOR_NAME": "hub", "GIT_AUTHOR_EMAIL": "hub@localhost"}
        who |= {"GIT_COMMITTER_NAME": "hub", "GIT_COMMITTER_EMAIL": "hub@localhost"}
        sha = self.git(repo_id, *args, env=who).strip()
        self.git(repo_id, "update-ref", ref, sha, parent or ZERO)  # fails if the branch moved
        return sha

    def create_ref(self, repo_id: str, ref: str, target: str) -> None:
        if (
            subprocess.run(
                ["git", "--git-dir", str(self.path(repo_id)), "rev-parse", "--verify", "-q", ref],
                capture_output=True,
            ).returncode
            == 0
        ):
            raise StoreError(409, f"{ref.split('/', 2)[2]} already exists")
        self.git(repo_id, "update-ref", ref, target, ZERO)
