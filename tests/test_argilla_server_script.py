"""scripts/argilla-server.sh for real: eval-able output, passwords, a fixed port, state kept
across a restart (search indices rebuilt), and an annotator's own responses (the osmem patch
of scripts/argilla_local.py).

One server of this module's own (a temporary MAGPIE_HUB_ARGILLA_HOME on a free port), beside
the session's `argilla_server`, since these tests stop and start it.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from test_review import make_build, name

from magpie_hub.review.sync import review_pull, review_push

pytestmark = pytest.mark.argilla

REPO = Path(__file__).parent.parent
SCRIPT = REPO / "scripts" / "argilla-server.sh"
USERS = ("owner", "annotator", "annotator2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    home: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARGILLA_API_")}
        env |= {"MAGPIE_HUB_ARGILLA_HOME": str(self.home)}
        env |= {"MAGPIE_HUB_ARGILLA_PORT": str(self.port)}
        return env | extra

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
        )

    def secret(self, user: str, kind: str = "key") -> str:
        return (self.home / f"{user}.{kind}").read_text().strip()

    def api(self, user: str) -> requests.Session:
        session = requests.Session()
        session.headers["X-Argilla-Api-Key"] = self.secret(user)
        return session


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    own = Server(tmp_path_factory.mktemp("argilla-script"), free_port())
    started = own.run("start")
    if started.returncode != 0:
        pytest.fail(f"argilla-server.sh start failed:\n{started.stderr[-3000:]}")
    try:
        yield own
    finally:
        own.run("stop")


@pytest.fixture
def owner_env(server: Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The review commands and an SDK client pointed at this module's server as owner."""
    import argilla as rg

    monkeypatch.setenv("ARGILLA_API_URL", server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", server.secret("owner"))
    return rg.Argilla(api_url=server.url, api_key=server.secret("owner"))


def test_start_prints_only_export_lines_and_says_how_to_sign_in(server: Server) -> None:
    again = server.run("start")  # running already: the same lines, nothing restarted
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"export ARGILLA_API_URL={server.url}",
        f"export ARGILLA_API_KEY={server.secret('owner')}",
    ]
    assert server.url in again.stderr
    for user in USERS:
        assert user in again.stderr and str(server.home / f"{user}.password") in again.stderr
    shell = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$(scripts/argilla-server.sh start)"; test -n "$ARGILLA_API_URL"; '
            'echo "$ARGILLA_API_URL $ARGILLA_API_KEY"',
        ],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == [server.url, server.secret("owner")]
    status = server.run("status")
    assert (status.returncode, status.stdout.strip()) == (0, f"running at {server.url}")


def test_passwords_are_generated_kept_private_and_sign_in_works(server: Server) -> None:
    for user in USERS:
        path = server.home / f"{user}.password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        password = path.read_text().strip()
        assert len(password) >= 12 and password != f"password-{user}"
        # The UI's sign-in: a form POST to /api/v1/token.
        token = requests.post(
            f"{server.url}/api/v1/token", data={"username": user, "password": password}
        )
        assert token.status_code == 201 and token.json()["access_token"], token.text
    wrong = requests.post(
        f"{server.url}/api/v1/token",
        data={"username": "annotator", "password": "password-annotator"},
    )
    assert wrong.status_code == 401


def test_a_port_taken_by_another_program_is_a_clear_error(server: Server, tmp_path) -> None:
    other = Server(tmp_path / "home", free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", other.port))
        taken.listen()
        started = other.run("start")
    assert started.returncode == 1 and started.stdout == ""
    assert f"port {other.port}" in started.stderr and "taken by another program" in started.stderr
    assert "MAGPIE_HUB_ARGILLA_PORT" in started.stderr
    assert not (other.home / "argilla.pid").exists()  # nothing was started
    bad = other.run("start", MAGPIE_HUB_ARGILLA_PORT="web")
    assert bad.returncode == 2 and "must be a port number" in bad.stderr


def test_state_survives_a_restart_and_an_annotator_answers_through_the_api(
    server: Server, owner_env: Any, tmp_path: Path
) -> None:
    import argilla as rg

    build = make_build(tmp_path / "b", 4, recipe="magpie")
    dataset, workspace = name(), "restart"
    assert review_push(build, dataset, workspace=workspace, create_workspace=True).added == 4
    assert "annotator" in {u.username for u in owner_env.workspaces(workspace).users}
    passwords = {user: server.secret(user, "password") for user in USERS}

    stopped = server.run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert server.run("status").returncode == 1
    began = time.monotonic()
    restarted = server.run("start")
    restart_s = time.monotonic() - began
    assert restarted.returncode == 0, restarted.stderr
    assert f"export ARGILLA_API_URL={server.url}" in restarted.stdout.splitlines()  # same URL
    assert "rebuilding the search indices" in restarted.stderr
    assert {user: server.secret(user, "password") for user in USERS} == passwords
    print(f"restart with an existing database: {restart_s:.1f} s")

    # Searchable again: the SDK's listing and a text search as the owner...
    client = rg.Argilla(api_url=server.url, api_key=server.secret("owner"))
    ds = client.datasets(dataset, workspace=workspace)
    assert len(list(ds.records())) == 4
    found = list(ds.records(query="Question 2"))  # rows are "Question {i}?" with uuid i + 1
    assert [str(r.id) for r in found] == [str(uuid.UUID(int=3))]
    # ...and the UI's own search as the annotator (the pending queue).
    annotator = server.api("annotator")
    queue = {
        "query": {},
        "filters": {
            "and": [
                {"type": "terms", "scope": {"entity": "response", "property": "status"},
                 "values": ["pending"]},
                {"type": "terms", "scope": {"entity": "record", "property": "status"},
                 "values": ["pending"]},
            ]
        },
    }  # fmt: skip
    search = f"{server.url}/api/v1/me/datasets/{ds.id}/records/search"
    pending = annotator.post(search, json=queue, params={"include": ["responses"]})
    assert pending.status_code == 200, pending.text
    assert pending.json()["total"] == 4
    first = pending.json()["items"][0]["record"]

    # The annotator's own Submit, as the UI sends it: 201, not 500 (osmem and scripts).
    values = {"quality": {"value": 4}, "corrected_response": {"value": "Better."}}
    created = annotator.post(
        f"{server.url}/api/v1/records/{first['id']}/responses",
        json={"values": values, "status": "submitted"},
    )
    assert created.status_code == 201, created.text
    metrics = f"{server.url}/api/v1/me/datasets/{ds.id}/metrics"
    progress = f"{server.url}/api/v1/datasets/{ds.id}/progress"
    assert annotator.get(metrics).json()["responses"]["submitted"] == 1  # the UI, after Submit
    assert annotator.get(progress).status_code == 200
    after = annotator.post(search, json=queue).json()
    assert after["total"] == 3 and first["id"] not in {i["record"]["id"] for i in after["items"]}

    # Changing it (PUT) and taking it back (DELETE) go through the same index updates.
    response_url = f"{server.url}/api/v1/responses/{created.json()['id']}"
    values["quality"] = {"value": 2}
    changed = annotator.put(response_url, json={"values": values, "status": "submitted"})
    assert changed.status_code == 200, changed.text
    assert annotator.delete(response_url).status_code == 200
    assert annotator.get(metrics).json()["responses"]["submitted"] == 0
    assert annotator.post(search, json=queue).json()["total"] == 4
    discarded = annotator.post(
        f"{server.url}/api/v1/records/{first['id']}/responses",
        json={"values": {"quality": {"value": 1}}, "status": "discarded"},
    )
    assert discarded.status_code == 201, discarded.text
    resubmitted = annotator.put(
        f"{server.url}/api/v1/responses/{discarded.json()['id']}",
        json={"values": values, "status": "submitted"},
    )
    assert resubmitted.status_code == 200, resubmitted.text
    assert annotator.get(metrics).json()["responses"] == {
        "total": 4, "submitted": 1, "discarded": 0, "draft": 0, "pending": 3
    }  # fmt: skip

    # And it is an ordinary response for `review pull`.
    pulled = review_pull(build, dataset, workspace=workspace)
    assert pulled.reviewed_rows == 1


def test_a_suggestion_deleted_through_the_api_leaves_the_record_searchable(
    server: Server, owner_env: Any
) -> None:
    """The third scripted update of argilla-server: removing a suggestion."""
    import argilla as rg

    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="ok", labels=["y", "n"])],
    )
    workspace = "suggestions"
    if owner_env.workspaces(workspace) is None:
        rg.Workspace(name=workspace, client=owner_env).create()
    ds = rg.Dataset(name=name(), workspace=workspace, settings=settings, client=owner_env)
    ds.create()
    ds.records.log([rg.Record(fields={"text": "t"}, suggestions=[rg.Suggestion("ok", "y")])])
    record = next(iter(ds.records(with_suggestions=True)))
    owner = server.api("owner")
    url = f"{server.url}/api/v1/records/{record._server_id}/suggestions"
    listed = owner.get(url).json()["items"]
    deleted = owner.delete(url, params={"ids": ",".join(s["id"] for s in listed)})
    assert deleted.status_code == 204, deleted.text
    assert owner.get(url).json()["items"] == []
    again = list(ds.records(with_suggestions=True, query="t"))
    assert len(again) == 1 and not list(again[0].suggestions)


def test_two_annotators_submitting_one_record_at_once_both_count(
    server: Server, owner_env: Any
) -> None:
    """Both annotators' responses land in the record's search document."""
    from concurrent.futures import ThreadPoolExecutor

    import argilla as rg

    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.RatingQuestion(name="quality", values=[1, 2, 3])],
    )
    workspace = "together"
    if owner_env.workspaces(workspace) is None:
        rg.Workspace(name=workspace, client=owner_env).create()
    ws = owner_env.workspaces(workspace)
    for user in ("annotator", "annotator2"):
        if user not in {u.username for u in ws.users}:
            ws.add_user(user)
    ds = rg.Dataset(name=name(), workspace=workspace, settings=settings, client=owner_env)
    ds.create()
    ds.records.log([{"text": f"t{i}"} for i in range(3)])
    records = [r._server_id for r in ds.records()]

    def submit(job: tuple[str, Any]) -> int:
        user, record_id = job
        return (
            server.api(user)
            .post(
                f"{server.url}/api/v1/records/{record_id}/responses",
                json={"values": {"quality": {"value": 2}}, "status": "submitted"},
            )
            .status_code
        )

    jobs = [(user, record) for record in records for user in ("annotator", "annotator2")]
    with ThreadPoolExecutor(len(jobs)) as pool:
        assert list(pool.map(submit, jobs)) == [201] * len(jobs)
    search = f"{server.url}/api/v1/me/datasets/{ds.id}/records/search"
    mine_pending = {
        "filters": {
            "and": [
                {"type": "terms", "scope": {"entity": "response", "property": "status"},
                 "values": ["pending"]}
            ]
        }
    }  # fmt: skip
    for user in ("annotator", "annotator2"):
        left = server.api(user).post(search, json=mine_pending)
        assert left.status_code == 200 and left.json()["total"] == 0, (user, left.text)


RETRY_CHECK = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from argilla_local import make_osmem_engine

async def main():
    engine = make_osmem_engine()(
        config={"hosts": [sys.argv[1]]}, number_of_shards=1, number_of_replicas=0
    )
    client = engine.client
    await client.indices.create(index="t", body={"mappings": {"properties": {}}})
    await client.index(index="t", id="r", body={"responses": []}, refresh=True)
    real_get, gets = client.get, []

    async def get_then_another_write(**kwargs):
        got = await real_get(**kwargs)
        gets.append(got["_seq_no"])
        if len(gets) == 1:  # another writer gets in between this read and the write
            await client.index(index="t", id="r", body={"responses": [{"id": "other"}]})
        return got

    client.get = get_then_another_write
    await engine._rewrite_document("t", "r", lambda s: s["responses"].append({"id": "mine"}))
    client.get = real_get
    source = (await client.get(index="t", id="r"))["_source"]
    print(len(gets), [r["id"] for r in source["responses"]])
    await engine.close()

asyncio.run(main())
"""


def test_the_osmem_engine_rereads_when_another_write_got_in_between(tmp_path: Path) -> None:
    """The read-change-write of scripts/argilla_local.py is safe against a lost update."""
    venv = Path(os.environ.get("ARGILLA_VENV") or Path.home() / ".cache/magpie-hub/argilla-venv")
    if not (venv / "bin" / "python").exists():
        pytest.skip(f"no argilla-server venv at {venv} (scripts/argilla-server.sh start makes it)")
    python = str(venv / "bin" / "python")
    binary = subprocess.run(
        [python, "-c", "import os, osmem_server as m; print(os.path.dirname(m.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    osmem = subprocess.Popen(
        [f"{binary}/bin/osmem-server", "--addr", f"127.0.0.1:{port}", "--no-stdin-watch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        check = subprocess.run(
            [python, "-c", RETRY_CHECK, f"http://127.0.0.1:{port}", str(REPO / "scripts")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ARGILLA_HOME_PATH": str(tmp_path)},
        )
    finally:
        osmem.terminate()
        osmem.wait(10)
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.split("\n")[-2] == "2 ['other', 'mine']"
