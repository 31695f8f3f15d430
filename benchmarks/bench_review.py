"""Records per second of the Argilla review loop: `review push` and `review pull`.

Needs a running server (`eval "$(scripts/argilla-server.sh start)"` sets ARGILLA_API_URL
and ARGILLA_API_KEY). Run from the repository root:

    .venv/bin/python benchmarks/bench_review.py --records 1000

It writes a synthetic `magpie-ultra` build (the loop reads only the build folder),
pushes it, logs two annotators' responses for every record through the SDK (as the
owner, as the tests do), pulls, and prints the timings side by side.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from magpie_hub.row_types import shard_schema


def synthetic_build(folder: Path, n: int) -> Path:
    from magpie_hub.plugins import get_registry

    features = get_registry().recipe("magpie-ultra").features
    rows = []
    for i in range(n):
        q, a = f"Question {i}: how do I do task {i}?", f"Answer {i}. " * 20
        row = {
            "uuid": str(uuid.UUID(int=i + 1)),
            "instruction": q,
            "response": a,
            "response_base": "Base " + a,
            "conversation": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            "num_turns": 1,
            "system_prompt_key": ["math", "coding", "advice"][i % 3],
            "model": "m",
            "model_base": "b",
            "pre_query_template": "",
            "score": float(i % 5),
            "score_base": 2.0,
            "score_difference": float(i % 5) - 2.0,
            "scorer": "reward-model",
        }
        rows.append({k: row.get(k) for k in features})
    (folder / "data").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(rows, schema=shard_schema(features)),
        folder / "data" / "train-00000-of-00001.parquet",
    )
    (folder / "manifest.json").write_text(
        json.dumps({"status": "complete", "recipe": "magpie-ultra"})
    )
    return folder


def main() -> None:
    import argilla as rg

    from magpie_hub.review.sync import connect, review_pull, review_push

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    client = connect()
    with tempfile.TemporaryDirectory() as tmp:
        build = synthetic_build(Path(tmp) / "build", args.records)
        dataset = f"bench-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        review_push(build, dataset, workspace="bench", create_workspace=True, client=client)
        push_s = time.perf_counter() - t0
        ds = client.datasets(dataset, workspace="bench")
        users = [u.id for u in client.users if u.role == "annotator"][:2] or [client.me.id]
        records = list(ds.records())
        for record in records:
            for user in users:
                for question, value in (("quality", 4), ("better", "response")):
                    record.responses.add(
                        rg.Response(question, value, user_id=user, status="submitted")
                    )
        t0 = time.perf_counter()
        ds.records.log(records)
        respond_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pulled = review_pull(build, dataset, workspace="bench", client=client)
        pull_s = time.perf_counter() - t0
        ds.delete()
    n = args.records
    print(f"\n{'step':<34} {'seconds':>8} {'records/s':>10}")
    print(f"{'review push (new dataset)':<34} {push_s:8.2f} {n / push_s:10.1f}")
    print(f"{'log responses (SDK, for reference)':<34} {respond_s:8.2f} {n / respond_s:10.1f}")
    print(f"{'review pull (merge + view)':<34} {pull_s:8.2f} {n / pull_s:10.1f}")
    print(f"\n{pulled.responses} responses from {pulled.reviewers} reviewer(s) pulled.")


if __name__ == "__main__":
    main()
