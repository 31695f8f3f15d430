"""Rows that stream: a build's rows read from Parquet batch by batch (`ParquetRows`) or
picked by position (`PickedRows`, `gather`), a view's rows made from them one at a time
(`made_view`), and Parquet written batch by batch (`write_rows`). With these no step
after generation holds all of a build's rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, overload

from magpie_hub.build import atomic_write
from magpie_hub.registry import View

READ_ROWS = 2048
"""Rows per record batch read."""
CONVERT_ROWS = 10_000
"""Rows turned from dicts into Arrow at a time when writing."""
ROW_GROUP_ROWS = 50_000
"""Rows per row group written (the size of a `default` shard)."""
SHUFFLE_ROWS = 10_000
"""Rows per bucket (and per row group written) of a `PickedRows` shuffle."""

Row = dict[str, Any]
Make = Callable[[Row, Counter[str]], Row | None]


class RowSequence(Sequence[Row]):
    """Rows read or made each time they are iterated: indexing makes the whole list (for
    small views and tests), `==` compares the rows."""

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class ParquetRows(RowSequence):
    """The rows of Parquet files in order, read batch by batch each time they are iterated.
    `len` comes from the files' footers; `rows[i]` reads one row group."""

    def __init__(self, paths: Sequence[Path], columns: Sequence[str] | None = None) -> None:
        self.paths = list(paths)
        self.columns = list(columns) if columns is not None else None
        self._sizes: list[list[int]] | None = None
        self._group: tuple[tuple[int, int], list[Row]] | None = None

    def select(self, columns: Iterable[str]) -> ParquetRows:
        """The same rows with only `columns` (those the files have)."""
        import pyarrow.parquet as pq

        have = set(pq.read_schema(self.paths[0]).names) if self.paths else set()
        return ParquetRows(self.paths, [c for c in columns if c in have])

    def batches(self) -> Iterator[Any]:
        """The rows as Arrow record batches."""
        import pyarrow.parquet as pq

        for path in self.paths:
            with pq.ParquetFile(path) as file:
                yield from file.iter_batches(batch_size=READ_ROWS, columns=self.columns)

    def __iter__(self) -> Iterator[Row]:
        for batch in self.batches():
            yield from batch.to_pylist()

    def _row_groups(self) -> list[list[int]]:
        if self._sizes is None:
            import pyarrow.parquet as pq

            self._sizes = []
            for path in self.paths:
                meta = pq.read_metadata(path)
                self._sizes.append([meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
        return self._sizes

    def __len__(self) -> int:
        return sum(sum(groups) for groups in self._row_groups())

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return list(islice(self, start, max(start, stop)))
            return [self[i] for i in range(start, stop, step)]
        n = index + len(self) if index < 0 else index
        if not 0 <= n < len(self):
            raise IndexError(index)
        for f, groups in enumerate(self._row_groups()):
            for g, size in enumerate(groups):
                if n < size:
                    return self._read_group(f, g)[n]
                n -= size
        raise IndexError(index)  # pragma: no cover (the length said otherwise)

    def _read_group(self, f: int, g: int) -> list[Row]:
        """One row group as dicts; the last one read is kept for the next index."""
        import pyarrow.parquet as pq

        if self._group is None or self._group[0] != (f, g):
            with pq.ParquetFile(self.paths[f]) as file:
                table = file.read_row_group(g, columns=self.columns)
            self._group = ((f, g), table.to_pylist())
        return self._group[1]


class MadeRows(RowSequence):
    """A view's rows, made from `source` by `make(row, tally)` (None leaves a row out) each
    time they are iterated, so writing the view streams; a finished pass keeps its tally.
    `len`, indexing and `==` make the whole list: for small views and tests."""

    def __init__(self, source: Iterable[Row], make: Make) -> None:
        self.source, self.make = source, make
        self.tally: Counter[str] | None = None

    def __iter__(self) -> Iterator[Row]:
        tally: Counter[str] = Counter()
        for row in self.source:
            made = self.make(row, tally)
            if made is not None:
                yield made
        self.tally = tally

    def finished_tally(self) -> Counter[str]:
        """The tally of a whole pass (one is made when none has finished yet)."""
        if self.tally is None:
            for _ in self:
                pass
        assert self.tally is not None
        return self.tally

    def __len__(self) -> int:
        return sum(1 for _ in self)


class TallyCounts(Mapping[str, Any]):
    """A made view's counts: `count(tally)` of its rows' last finished pass."""

    def __init__(self, rows: MadeRows, count: Callable[[Counter[str]], dict[str, Any]]) -> None:
        self.rows, self.count = rows, count

    def _counts(self) -> dict[str, Any]:
        return self.count(self.rows.finished_tally())

    def __getitem__(self, key: str) -> Any:
        return self._counts()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts())

    def __len__(self) -> int:
        return len(self._counts())

    def __repr__(self) -> str:
        return repr(self._counts())


def made_view(
    source: Iterable[Row],
    make: Make,
    features: Any,
    count: Callable[[Counter[str]], dict[str, Any]] = lambda _: {},
) -> View:
    """A view whose rows are made from `source` (a list, or `BuildFolder.rows()`: anything
    that can be iterated more than once) as they are written, and whose counts come from
    the tally `make` keeps."""
    rows = MadeRows(source, make)
    return View(rows, features, TallyCounts(rows, count))


def combine(pieces: list[Any], order: Any = None) -> Any:
    """`pa.concat_tables(pieces).combine_chunks()` (then `.take(order)`), made a column at a
    time: each column of the pieces is let go once copied, so the pieces and the result are
    never both held whole. Empties `pieces`."""
    import pyarrow as pa

    schema = pieces[0].schema
    columns = []
    for name in schema.names:
        chunks = [chunk for piece in pieces for chunk in piece.column(name).chunks]
        column = pa.chunked_array(chunks, schema.field(name).type).combine_chunks()
        columns.append(column if order is None else column.take(order))
        del chunks
        pieces[:] = [piece.drop_columns([name]) for piece in pieces]
    pieces.clear()
    return pa.Table.from_arrays(columns, schema=schema)


def read_parquet(path: Path) -> Any:
    """One Parquet file as a pyarrow Table, without `pq.read_table`'s dataset set-up (which
    costs more than reading a small chunk)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as file:
        return file.read()


def gather(which: Any, at: Any, read: Callable[[int], Any]) -> Any:
    """Rows picked from several tables, in the order asked: row k is row `at[k]` of the
    table `read(which[k])` (numpy arrays, not empty). Each table is read once, one at a
    time, and only its wanted rows are kept."""
    import numpy as np
    import pyarrow as pa

    used, group = np.unique(which, return_inverse=True)
    taken = []
    for n, source in enumerate(used):
        table = read(int(source))
        wanted = at[group == n]
        whole = len(wanted) == table.num_rows and (wanted == np.arange(len(wanted))).all()
        taken.append(table if whole else table.take(pa.array(wanted)))
        del table
    grouped = np.argsort(group, kind="stable")  # the concatenated rows' asked positions
    in_order = (grouped == np.arange(len(grouped))).all()
    back = np.empty_like(grouped)
    back[grouped] = np.arange(len(grouped))
    return combine(taken, None if in_order else pa.array(back))


class PickedRows(RowSequence):
    """The rows of Parquet files at `positions` (indices over all their rows, in order),
    in the order given, as Arrow tables (`tables`) or dicts. Positions in ascending order
    are read ROW_GROUP_ROWS at a time; any other order is an external shuffle through
    `scratch`: each file is read once, its picked rows sent to a bucket file per
    SHUFFLE_ROWS of the output, then each bucket read and put in order. `len` is free;
    indexing makes the whole list."""

    def __init__(self, paths: Sequence[Path], positions: Sequence[int], scratch: Path) -> None:
        import numpy as np
        import pyarrow.parquet as pq

        self.paths, self.positions, self.scratch = list(paths), positions, scratch
        sizes = [pq.read_metadata(p).num_rows for p in self.paths]
        self.starts = np.cumsum([0, *sizes])

    def _files(self, positions: Any) -> tuple[Any, Any]:
        """(the file of each position, the row within it)."""
        import numpy as np

        files = np.searchsorted(self.starts, positions, side="right") - 1
        return files, positions - self.starts[files]

    def tables(self) -> Iterator[Any]:
        import numpy as np

        positions = np.asarray(self.positions, np.int64)
        if not (np.diff(positions) >= 0).all():
            yield from self._shuffled(positions)
            return
        for b in range(0, len(positions), ROW_GROUP_ROWS):
            files, at = self._files(positions[b : b + ROW_GROUP_ROWS])
            yield gather(files, at, lambda f: read_parquet(self.paths[f]))

    def _shuffled(self, positions: Any) -> Iterator[Any]:
        import shutil

        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        output = np.argsort(positions, kind="stable")  # output index of each sorted position
        files, at = self._files(positions[output])
        block = output // SHUFFLE_ROWS
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir(parents=True)
        writers: dict[int, Any] = {}
        try:
            for f in np.unique(files):
                mine = files == f
                rows = read_parquet(self.paths[f]).take(pa.array(at[mine]))
                rows = rows.append_column("__out", pa.array(output[mine]))
                for b in np.unique(block[mine]):
                    piece = rows.filter(pa.array(block[mine] == b))
                    if b not in writers:
                        path = self.scratch / f"{b}.parquet"
                        writers[b] = pq.ParquetWriter(path, piece.schema)
                    writers[b].write_table(piece)
                del rows
                pa.default_memory_pool().release_unused()
            for writer in writers.values():
                writer.close()
            for b in sorted(writers):
                piece = read_parquet(self.scratch / f"{b}.parquet")
                order = pa.array(np.argsort(piece.column("__out").to_numpy()))
                pieces = [piece.drop_columns(["__out"])]
                del piece
                yield combine(pieces, order)  # a column at a time
                pa.default_memory_pool().release_unused()
        finally:
            for writer in writers.values():
                writer.close()
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __iter__(self) -> Iterator[Row]:
        for table in self.tables():
            for batch in table.to_batches(max_chunksize=READ_ROWS):
                yield from batch.to_pylist()  # a batch's dicts at a time, not the block's

    def __len__(self) -> int:
        return len(self.positions)


def write_tables(path: Path, tables: Iterable[Any], schema: Any) -> int:
    """Write Arrow `tables` (each cast to `schema`, one row group each) as one Parquet
    file, atomically; no rows, no file. Returns how many rows were written."""
    import pyarrow.parquet as pq

    it = (t for t in tables if t.num_rows)
    first = next(it, None)
    if first is None:
        return 0
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written, first
        table, first = first, None
        with pq.ParquetWriter(tmp, schema) as writer:
            while table is not None:
                writer.write_table(table if table.schema == schema else table.cast(schema))
                written += table.num_rows
                table = None  # let it go before the next one is made
                table = next(it, None)

    atomic_write(path, write)
    return written


def write_rows(path: Path, rows: Iterable[Row], schema: Any) -> int:
    """Write `rows` as one Parquet file, atomically, converted CONVERT_ROWS at a time and
    written ROW_GROUP_ROWS per row group; no rows, no file. Returns how many were written.
    Up to ROW_GROUP_ROWS rows give the bytes `pq.write_table` of them all gives."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    it = iter(rows)
    chunk = list(islice(it, CONVERT_ROWS))
    if not chunk:
        return 0
    written = 0

    def write(tmp: Path) -> None:
        nonlocal chunk, written
        pending: list[Any] = []
        with pq.ParquetWriter(tmp, schema) as writer:
            while chunk:
                pending.append(pa.Table.from_pylist(chunk, schema=schema))
                written, chunk = written + len(chunk), []
                if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
                    writer.write_table(combine(pending))
                chunk = list(islice(it, CONVERT_ROWS))
            if pending:
                writer.write_table(combine(pending))

    atomic_write(path, write)
    return written
