"""Where streamed captures go: memory, or shards on disk with a JSON manifest.

A sink has ``write(name, step, timestep, value)`` and ``flush()``; the capture code
(:func:`diffusion_circuits.probe.streaming.stream`) only calls those, so it never knows
where data goes. A value is either a *table* value (a number, a 0-d tensor, or a dict of
those: one long-format row per entry, ``hook, step, timestep, metric, value``) or a
*tensor* (anything with at least one axis).

:class:`DiskSink` keeps at most ``shard_mb`` of each kind in memory, then writes a shard
(``tensors-00000.npz``, ``table-00000.parquet``) and rewrites ``manifest.json``, so memory
stays flat however many steps or images are streamed.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from numbers import Number
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

__all__ = ["MemorySink", "DiskSink", "read_manifest", "load_tensors"]

TABLE_COLUMNS = ("hook", "step", "timestep", "metric", "value")


def _rows(name: str, step: int, timestep: int | None, value) -> list[dict] | None:
    """Long-format rows of a table value; None if ``value`` is a tensor."""
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        value = value.item()
    if isinstance(value, Number):
        value = {"value": value}
    if isinstance(value, dict):
        return [
            dict(hook=name, step=step, timestep=timestep, metric=str(k), value=float(v))
            for k, v in value.items()
        ]
    return None


def _array(value) -> np.ndarray:
    # a copy: a view would keep the whole activation (e.g. both CFG halves) alive, and the
    # shard budget counts only the view's bytes
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    return np.array(value)


class MemorySink:
    """Keeps everything in memory: ``tensors[name]`` lists ``(step, timestep, array)``,
    ``rows`` the table rows."""

    def __init__(self) -> None:
        self.tensors: dict[str, list[tuple[int, int | None, np.ndarray]]] = defaultdict(list)
        self.rows: list[dict] = []

    def write(self, name: str, step: int, timestep: int | None, value) -> None:
        rows = _rows(name, step, timestep, value)
        if rows is not None:
            self.rows.extend(rows)
        else:
            self.tensors[name].append((step, timestep, _array(value)))

    def flush(self) -> None:
        pass

    def stacked(self, name: str) -> np.ndarray:
        """``name``'s values over the captured steps, stacked: [steps, ...]."""
        return np.stack([array for _, _, array in self.tensors[name]])

    def timesteps(self, name: str) -> list[int | None]:
        return [t for _, t, _ in self.tensors[name]]


class DiskSink:
    """Streams to ``folder``: npz shards for tensors, parquet shards for tables.

    ``manifest.json`` lists every shard and, for tensors, each entry's hook, step,
    timestep, key in its npz file, shape and dtype; it is rewritten (atomically) at every
    shard, so a crash leaves a readable prefix. Read back with :func:`read_manifest` and
    :func:`load_tensors`.
    """

    def __init__(self, folder: str | os.PathLike, shard_mb: float = 64.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shard_bytes = int(shard_mb * 2**20)
        self.manifest: dict = {"format": 1, "table_columns": list(TABLE_COLUMNS), "shards": []}
        self._tensors: dict[str, np.ndarray] = {}
        self._entries: list[dict] = []
        self._tensor_bytes = 0
        self._rows: list[dict] = []
        self._counts = {"npz": 0, "parquet": 0}

    def write(self, name: str, step: int, timestep: int | None, value) -> None:
        rows = _rows(name, step, timestep, value)
        if rows is not None:
            self._rows.extend(rows)
            # ~5 values of 8 bytes and a name per row: flush on a row budget alike
            if len(self._rows) * 64 >= self.shard_bytes:
                self._flush_table()
            return
        array = _array(value)
        key = f"a{len(self._entries)}"
        self._tensors[key] = array
        self._entries.append(
            dict(
                hook=name,
                step=step,
                timestep=timestep,
                key=key,
                shape=list(array.shape),
                dtype=str(array.dtype),
            )
        )
        self._tensor_bytes += array.nbytes
        if self._tensor_bytes >= self.shard_bytes:
            self._flush_tensors()

    def flush(self) -> None:
        """Write whatever is buffered as shards and the manifest."""
        self._flush_tensors()
        self._flush_table()

    def _shard(self, kind: str) -> str:
        stem = "tensors" if kind == "npz" else "table"
        name = f"{stem}-{self._counts[kind]:05d}.{kind}"
        self._counts[kind] += 1
        return name

    def _flush_tensors(self) -> None:
        if not self._entries:
            return
        file = self._shard("npz")
        np.savez(self.folder / file, **self._tensors)
        self.manifest["shards"].append({"file": file, "kind": "npz", "entries": self._entries})
        self._tensors, self._entries, self._tensor_bytes = {}, [], 0
        self._write_manifest()

    def _flush_table(self) -> None:
        if not self._rows:
            return
        file = self._shard("parquet")
        pq.write_table(pa.Table.from_pylist(self._rows), self.folder / file)
        self.manifest["shards"].append({"file": file, "kind": "parquet", "rows": len(self._rows)})
        self._rows = []
        self._write_manifest()

    def _write_manifest(self) -> None:
        tmp = self.folder / "manifest.json.tmp"
        tmp.write_text(json.dumps(self.manifest, indent=1))
        tmp.replace(self.folder / "manifest.json")


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a :class:`DiskSink` folder."""
    return json.loads((Path(folder) / "manifest.json").read_text())


def load_tensors(folder: str | os.PathLike, name: str) -> tuple[list[int | None], np.ndarray]:
    """``(timesteps, values)`` of hook ``name`` streamed to ``folder``, values stacked
    over steps in the order written. Loads only that hook's arrays."""
    timesteps, arrays = [], []
    for shard in read_manifest(folder)["shards"]:
        entries = [e for e in shard.get("entries", ()) if e["hook"] == name]
        if not entries:
            continue
        with np.load(Path(folder) / shard["file"]) as data:
            for entry in entries:
                timesteps.append(entry["timestep"])
                arrays.append(data[entry["key"]])
    if not arrays:
        raise KeyError(f"no tensors of {name!r} in {folder}")
    return timesteps, np.stack(arrays)
