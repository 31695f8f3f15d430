"""The curate pipeline's first step: the rows some tagger still lacks, read from the
build's shards as they are sent (no list of rows is held, on the driver or here).

(No `from __future__ import annotations`: distilabel reads the step's fields at run time.)
"""

from pathlib import Path
from typing import Any

from distilabel.steps.base import GeneratorStep
from distilabel.typing import GeneratorStepOutput, StepColumns
from pydantic import Field

from magpie_hub.curate.kit import TODO
from magpie_hub.steps import LightStep, runs_mask


class TagRows(LightStep, GeneratorStep):
    """`columns` + `row_index` + `_todo` (the taggers that lack the row) of each row that
    some tagger lacks, in build order, in batches."""

    shards: list[str]
    columns: list[str]
    num_rows: int
    todo: dict[str, list[list[int]]] = Field(exclude=True)
    """Tagger -> the runs of row indices it lacks (kept out of distilabel's signature)."""

    @property
    def outputs(self) -> StepColumns:
        return [*self.columns, "row_index", TODO]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        import numpy as np

        lacks = {name: runs_mask(runs, self.num_rows) for name, runs in self.todo.items()}
        wanted = np.logical_or.reduce(list(lacks.values()))
        total, sent = int(wanted.sum()), 0
        batch: list[dict[str, Any]] = []
        for start, records in self._batches(wanted):
            picked = np.flatnonzero(wanted[start : start + records.num_rows])
            rows = records.take(picked).to_pylist() if len(picked) else []
            for n, row in zip(picked, rows, strict=True):
                i = start + int(n)
                sent += 1
                if sent <= offset:
                    continue
                batch.append({**row, "row_index": i, TODO: [t for t in lacks if lacks[t][i]]})
                if len(batch) == self.batch_size or sent == total:
                    yield batch, sent == total
                    batch = []

    def _batches(self, wanted: Any) -> Any:
        """(first row index, record batch) of the shards, in order; a shard with no
        wanted row is not read."""
        import pyarrow.parquet as pq

        from magpie_hub.row_streams import ParquetRows

        start = 0
        for path in map(Path, self.shards):
            rows = pq.read_metadata(path).num_rows
            if wanted[start : start + rows].any():
                first = start
                for records in ParquetRows([path], self.columns).batches():
                    yield first, records
                    first += records.num_rows
            start += rows
