import json
import os
import stat

import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.cli import user_message
from diffusion_circuits.io import (
    UserError,
    atomic_dir,
    atomic_path,
    read_json,
    read_npz,
    read_parquet,
    write_json,
    write_npz,
    write_parquet,
)


def test_interrupted_write_leaves_nothing_and_keeps_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_writers_round_trip(tmp_path):
    write_json({"a": np.float32(1.5), "nan": float("nan"), "t": (1, 2)}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1.5, "nan": None, "t": [1, 2]}
    write_npz(tmp_path / "x.npz", images=np.arange(6, dtype=np.uint8))
    with np.load(tmp_path / "x.npz") as archive:
        assert archive["images"].tolist() == list(range(6))
    frame = pd.DataFrame({"image_id": [0, 1], "value": [0.5, 1.0]})
    write_parquet(frame, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)


def test_outputs_get_the_mode_a_plain_open_would_give(tmp_path):
    mask = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "m.json")
        with atomic_dir(tmp_path / "folder") as folder:
            (folder / "x").write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755


@pytest.mark.parametrize(
    ("reader", "name"),
    [(read_parquet, "table.parquet"), (read_json, "m.json"), (read_npz, "a.npz")],
)
def test_a_corrupt_file_is_one_line_naming_it_and_a_missing_one_stays_missing(
    tmp_path, reader, name
):
    path = tmp_path / name
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(UserError) as caught:
        reader(path)
    message = user_message(caught.value)
    assert str(path) in message and "\n" not in message and "corrupt" in message
    with pytest.raises(FileNotFoundError):
        reader(tmp_path / f"missing-{name}")
