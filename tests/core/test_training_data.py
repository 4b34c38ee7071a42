"""Training data: real chest X-rays with subfolder labels, real head CT slices in HU windows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medgan_desktop.core.imaging.intensity import WindowMode
from medgan_desktop.core.training.config import DataConfig
from medgan_desktop.core.training.data import (
    DataError,
    ImageFolderDataset,
    VolumeSliceDataset,
    build_dataset,
    preview_batch,
    read_volume_file,
)
from medgan_desktop.core.training.devices import configure_threads, list_devices, select_device


def _few_xrays(shared_data: Path, tmp_path: Path, n: int = 5) -> Path:
    """A folder of symlinks to n real NORMAL and n PNEUMONIA images (never copied)."""
    src = shared_data / "chest_xray" / "train"
    for cls in ("NORMAL", "PNEUMONIA"):
        (tmp_path / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:n]:
            (tmp_path / cls / f.name).symlink_to(f)
    return tmp_path


def test_image_folder_with_labels(shared_data: Path, tmp_path: Path) -> None:
    root = _few_xrays(shared_data, tmp_path / "xr")
    ds = ImageFolderDataset(root, size=32, label_from_subfolders=True, flip=True)
    assert len(ds) == 10 and ds.class_names == ("NORMAL", "PNEUMONIA")
    item = ds[(0, 1)]
    assert item["target"].shape == (1, 32, 32) and item["target"].dtype == torch.float32
    assert -1.0 <= float(item["target"].min()) < float(item["target"].max()) <= 1.0
    assert [int(ds[i]["label"]) for i in range(10)] == [0] * 5 + [1] * 5
    # augmentation is a function of the seed
    assert torch.equal(ds[(3, 11)]["target"], ds[(3, 11)]["target"])
    assert ds.describe()["class_counts"] == {"NORMAL": 5, "PNEUMONIA": 5}
    assert ds.preprocessing.class_names == ("NORMAL", "PNEUMONIA")
    rgb = ImageFolderDataset(root, size=16, channels=3, max_images=4)
    assert len(rgb) == 4 and rgb[0]["target"].shape == (3, 16, 16) and "label" not in rgb[0]
    assert preview_batch(rgb, 3).shape == (3, 3, 16, 16)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        build_dataset(DataConfig(path=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        ImageFolderDataset(tmp_path / "empty")
    (tmp_path / "bad" / "A").mkdir(parents=True)
    (tmp_path / "bad" / "A" / "x.png").write_bytes(b"not a png")
    ds = ImageFolderDataset(tmp_path / "bad")
    with pytest.raises(DataError, match="cannot read image"):
        ds[0]
    with pytest.raises(DataError, match="two class folders"):
        ImageFolderDataset(tmp_path / "bad", label_from_subfolders=True)


def test_head_ct_slices(shared_data: Path) -> None:
    path = shared_data / "head_ct_mr" / "invesalius_cranium_headCT.nii.gz"
    ds = build_dataset(DataConfig(path=str(path), size=32, max_images=20, rotate90=True))
    assert isinstance(ds, VolumeSliceDataset)
    assert ds.modality == "CT" and ds.preprocessing.target.mode == WindowMode.FIXED
    assert ds.preprocessing.target.lo == -1024.0
    assert len(ds) == 20
    x = ds[(0, 5)]["target"]
    assert x.shape == (1, 32, 32) and float(x.max()) > -0.5 and float(x.min()) >= -1.0
    vol = read_volume_file(path)
    mr_like = VolumeSliceDataset([vol], size=16, modality="MR", axis=2, max_images=5)
    assert mr_like.preprocessing.target.mode == WindowMode.PERCENTILE and len(mr_like) == 5


def test_devices() -> None:
    devs = list_devices()
    assert devs[0].key == "cpu"
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            select_device("cuda")
    n = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)
