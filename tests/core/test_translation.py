"""Paired data preparation, volume translation and the translate CLI on the real phantom."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medgan_desktop.cli import main
from medgan_desktop.core.imaging.slices import context_indices, fit_square, unfit_square
from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.models.runs import load_model
from medgan_desktop.core.progress import Cancelled, CancelToken, Progress
from medgan_desktop.core.training.pairs import PairedDataError, PairedVolume, index_pairs, patient_split, slab_split
from medgan_desktop.core.training.slice_data import PairedSliceDataset, UnpairedSliceDataset
from medgan_desktop.core.volume import Volume

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The MRI-DIR phantom MR and registered CT, shrunk 8x in-plane, as NIfTI files."""
    d = SHARED / "mridir_phantom"
    if not (d / "MR_T2_DICOM").is_dir():
        pytest.fail(f"real test data missing at {d}: clone the project with ../shared beside it")
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(d / "MR_T2_DICOM")))
    mr = sitk.Shrink(r.Execute(), [8, 8, 2])
    ct = sitk.Resample(
        sitk.ReadImage(str(d / "CT_rigid_to_MR_grid.nii.gz")),
        mr,
        sitk.Transform(),
        sitk.sitkLinear,
        -1024.0,
        sitk.sitkFloat32,
    )
    out = tmp_path_factory.mktemp("pair")
    sitk.WriteImage(mr, str(out / "mr.nii.gz"))
    sitk.WriteImage(ct, str(out / "ct.nii.gz"))
    return out / "mr.nii.gz", out / "ct.nii.gz"


@pytest.fixture(scope="module")
def tiny_run(small_pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2.5D pix2pix run trained for a few steps through ``medgan translate-train``."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    mr, ct = small_pair
    rc = main(
        [
            "translate-train",
            "--method",
            "pix2pix",
            "--pair",
            str(mr),
            str(ct),
            "--size",
            "32",
            "--context",
            "1",
            "--base-filters",
            "4",
            "--steps",
            "6",
            "--batch",
            "4",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--out",
            str(run),
        ]
    )
    assert rc == 0
    return run


def _vol(path: Path, modality: str) -> Volume:
    return Volume.from_sitk(
        sitk.ReadImage(str(path)), modality=modality, units="HU" if modality == "CT" else ""
    )


def test_slab_split_never_mixes_slices() -> None:
    train, test = slab_split(94, 0.25, gap=2)
    assert len(test) == 24 and test[-1] == 93
    assert max(train) + 2 < min(test)  # a gap of context+1 slices
    assert not set(train) & set(test)
    with pytest.raises(PairedDataError):
        slab_split(3, 0.5, gap=2)


def test_patient_split_is_by_patient_and_reproducible() -> None:
    ids = [f"P{i}" for i in range(10)] * 3  # repeated keys (several slices/series each)
    tr, te = patient_split(ids, 0.2, seed=1)
    assert len(te) == 2 and not set(tr) & set(te) and set(tr) | set(te) == set(ids)
    assert patient_split(ids, 0.2, seed=1) == (tr, te)
    with pytest.raises(PairedDataError):
        patient_split(["only"])


def test_fit_and_unfit_square_roundtrip() -> None:
    img = torch.linspace(-1, 1, 40 * 60).reshape(1, 1, 40, 60)
    sq = fit_square(img, 64)
    assert sq.shape == (1, 1, 64, 64)
    assert float(sq[0, 0, 0, 0]) == -1.0  # padding uses the window floor
    back = unfit_square(sq, 40, 60)
    assert back.shape == img.shape
    assert float((back - img).abs().mean()) < 0.02
    assert context_indices(0, 5, 2) == [0, 0, 0, 1, 2] and context_indices(4, 5, 1) == [3, 4, 4]


def test_paired_dataset_items(small_pair: tuple[Path, Path]) -> None:
    mr, ct = _vol(small_pair[0], "MR"), _vol(small_pair[1], "CT")
    ds = PairedSliceDataset(
        [PairedVolume(mr, ct, "phantom", tuple(range(10, 30)))],
        size=32,
        context_slices=2,
        flip=True,
    )
    assert 0 < len(ds) <= 20
    item = ds[0]
    assert item["source"].shape == (5, 32, 32) and item["target"].shape == (1, 32, 32)
    assert float(item["target"].min()) >= -1 and float(item["target"].max()) <= 1
    assert (
        set(torch.unique(item["mask"]).tolist()) <= {0.0, 1.0} and float(item["mask"].mean()) > 0.05
    )
    # Same seed, same flip; the flip applies to source, target and mask together.
    a, b = ds[(0, 1)], ds[(0, 1)]
    assert torch.equal(a["source"], b["source"])
    assert torch.equal(ds[(0, 1)]["target"], torch.flip(ds[(0, 2)]["target"], dims=(-1,)))
    pre = ds.preprocessing
    assert (pre.modality_in, pre.modality_out, pre.context_slices) == ("MR", "CT", 2)
    assert pre.target.lo == -1024 and pre.target.hi == 3000  # SynthRAD HU clip
    assert ds.describe()["patients"] == ["phantom"]
    with pytest.raises(PairedDataError):
        PairedVolume(mr, replace(ct, array=ct.array[:-1]))


def test_unpaired_dataset_is_deterministic(small_pair: tuple[Path, Path]) -> None:
    mr, ct = _vol(small_pair[0], "MR"), _vol(small_pair[1], "CT")
    ds = UnpairedSliceDataset([mr], [ct], size=32)
    assert torch.equal(ds[(3, 7)]["target"], ds[(3, 7)]["target"])
    assert not torch.equal(ds[(3, 7)]["target"], ds[(3, 8)]["target"])


def test_index_pairs_matches_mr_and_ct_of_a_patient() -> None:
    class Rec:
        def __init__(self, pid: str, study: str, uid: str, mod: str, n: int) -> None:
            self.patient_id, self.study_uid, self.series_uid, self.modality = pid, study, uid, mod
            self.instance_count = n

    class FakeIndex:
        def all_series(self) -> list[Rec]:
            return [
                Rec("A", "s1", "mr1", "MR", 20),
                Rec("A", "s2", "ct0", "CT", 99),
                Rec("A", "s1", "ct1", "CT", 10),
                Rec("B", "s3", "mr2", "MR", 5),
            ]

    assert index_pairs(FakeIndex()) == [("A", "mr1", "ct1")]


def test_translate_volume_on_source_grid(tiny_run: Path, small_pair: tuple[Path, Path]) -> None:
    model = load_model(tiny_run)
    mr = _vol(small_pair[0], "MR")
    reports: list[Progress] = []
    out = translate(mr, model, progress=reports.append, batch_size=5)
    assert out.shape == mr.shape and out.spacing == mr.spacing and out.origin == mr.origin
    assert out.synthetic and out.modality == "CT" and out.units == "HU"
    assert out.description == f"SYNTHETIC CT ({tiny_run.name})"
    assert out.array.dtype == np.float32
    assert float(out.array.min()) >= -1024 and float(out.array.max()) <= 3000
    assert reports[-1].done == reports[-1].total == -(-mr.shape[0] // 5)
    # Batching does not change the result; flip TTA does something.
    again = translate(mr, model, batch_size=1)
    np.testing.assert_allclose(again.array, out.array, atol=1e-2)
    tta = translate(mr, model, tta_flip=True)
    assert float(np.abs(tta.array - out.array).mean()) > 0


def test_translate_refuses_wrong_modality_and_cancels(
    tiny_run: Path, small_pair: tuple[Path, Path]
) -> None:
    model = load_model(tiny_run)
    ct = _vol(small_pair[1], "CT")
    with pytest.raises(ValueError, match="translates MR to CT, but the input is CT"):
        translate(ct, model)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        translate(_vol(small_pair[0], "MR"), model, cancel=token)


def test_translate_cli_writes_nifti_on_input_grid(
    tiny_run: Path,
    small_pair: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sct.nii.gz"
    assert (
        main(
            [
                "translate",
                "--model",
                str(tiny_run),
                "--input",
                str(small_pair[0]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    img = sitk.ReadImage(str(out))
    ref = sitk.ReadImage(str(small_pair[0]))
    assert img.GetSize() == ref.GetSize()
    assert np.allclose(img.GetOrigin(), ref.GetOrigin()) and np.allclose(
        img.GetSpacing(), ref.GetSpacing()
    )
    arr = sitk.GetArrayFromImage(img)
    assert arr.min() >= -1024 and arr.max() <= 3000
    # Held-out metrics were written by translate-train.
    assert (tiny_run / "heldout_metrics.json").is_file()
    # A CT input is a user error (exit code 2), not a silent result.
    assert (
        main(
            [
                "translate",
                "--model",
                str(tiny_run),
                "--input",
                str(small_pair[1]),
                "--out",
                str(tmp_path / "bad.nii.gz"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "translate",
                "--model",
                str(tmp_path / "missing"),
                "--input",
                str(small_pair[0]),
                "--out",
                str(tmp_path / "x.nii.gz"),
            ]
        )
        == 2
    )
    assert "error" in capsys.readouterr().err
