"""Nothing silent, nothing lost: each output of the chain is what it says it is.

One test per guarantee, on real data where it matters: a model that does not fit a series
is refused (and the best fit chosen); the synthetic mark survives DICOM and NIfTI round
trips into the index and the viewers; geometry is never invented (irregular spacing,
slices without position, 2D images); failed writes (full disk) exit non-zero and leave
nothing; training stops on SIGTERM with a checkpoint, checkpoints by time, stops at a CPU
budget, and resumes past a checkpoint that is not weights-only; the index counts one image
once; small ones (model version, a closed pipe, an import of nothing).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset

from medgan_desktop.cli import main
from medgan_desktop.core.atomic import WriteError
from medgan_desktop.core.dicom.series import load_series
from medgan_desktop.core.gan.methods.base import MethodConfig
from medgan_desktop.core.imaging.display import png_text
from medgan_desktop.core.io import open_volume
from medgan_desktop.core.models.runs import Preprocessing, list_checkpoints
from medgan_desktop.core.training.config import StopReason, TrainConfig
from medgan_desktop.core.training.loop import train
from medgan_desktop.core.volume import Volume

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "medgan_desktop.cli"]


@pytest.fixture(scope="module")
def phantom_t2(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight consecutive slices of the MRI-DIR phantom T2 series (a copy, never the source)."""
    files = sorted((shared_data / "mridir_phantom" / "MR_T2_DICOM").glob("*.dcm"))[40:48]
    assert len(files) == 8, "the MRI-DIR phantom T2 series is missing"
    out = tmp_path_factory.mktemp("t2")
    for f in files:
        shutil.copy(f, out / f.name)
    return out


# -- model applicability ----------------------------------------------------------------------
def test_head_model_is_refused_on_the_phantom_t2_unless_forced(
    phantom_t2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.nii.gz"
    base = ["translate", "--input", str(phantom_t2), "--out", str(out), "--threads", "1"]
    assert main([*base, "--model", "head_mrct_student"]) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "T2" in err and "T1" in err and "phantom" in err
    assert not out.exists()
    assert main([*base, "--model", "head_mrct_student", "--force"]) == 0 and out.is_file()
    assert json.loads(out.with_name("o.json").read_text())["model_fits_source"] is False
    out.unlink()
    out.with_name("o.json").unlink()
    # without --model: the best fit is chosen, and the reason printed
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "mrct_phantom" in err and "best fit" in err
    assert json.loads(out.with_name("o.json").read_text())["model"].startswith("mrct_phantom")


# -- provenance survives ---------------------------------------------------------------------
def test_synthetic_mark_survives_dicom_and_nifti_round_trips(
    phantom_t2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dcm = tmp_path / "syn_dicom"
    assert main(["translate", "--input", str(phantom_t2), "--out", str(dcm), "--format", "dicom",
                 "--threads", "1"]) == 0
    files = sorted(dcm.glob("*.dcm"))
    assert len(files) == 8
    ds = pydicom.dcmread(files[0])
    assert ds.SyntheticData == "YES" and "DERIVED" in ds.ImageType
    versions = " ".join(ds.ContributingEquipmentSequence[0].SoftwareVersions)
    assert "1.1.0" in versions  # the catalogue version, not "1" or "unknown"
    db = tmp_path / "index.sqlite"
    assert main(["import", str(dcm), str(phantom_t2), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["ls", "--json", "--db", str(db)]) == 0
    series = [s for p in json.loads(capsys.readouterr().out) for st in p["studies"] for s in st["series"]]
    marks = sorted((s["modality"], s["synthetic"]) for s in series)
    assert marks == [("CT", True), ("MR", False)]
    vol = load_series(files)
    assert vol.synthetic and vol.modality == "CT"
    # NIfTI: a sidecar and the header description both say it
    nii = tmp_path / "syn.nii.gz"
    assert main(["translate", "--input", str(phantom_t2), "--out", str(nii), "--threads", "1"]) == 0
    back = open_volume(nii)
    assert back.synthetic and back.description.startswith("SYNTHETIC")
    nii.with_name("syn.json").unlink()  # the header alone still says it
    assert open_volume(nii).synthetic


# -- geometry is never invented ----------------------------------------------------------------
def _ct_slice(z: float | None, n: int, rng: np.random.Generator) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.99.{n}"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.99.100"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.99.101"
    ds.Modality = "MR"
    ds.SeriesDescription = "T2 test"
    ds.InstanceNumber = n + 1
    if z is not None:
        ds.ImagePositionPatient = [0, 0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 2.5
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = rng.integers(0, 1000, (16, 16), dtype=np.uint16).tobytes()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _series(folder: Path, zs: list[float | None]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for n, z in enumerate(zs):
        p = folder / f"s{n:02d}.dcm"
        _ct_slice(z, n, rng).save_as(p, enforce_file_format=True)
        out.append(p)
    return out


def test_irregular_spacing_follows_the_data_and_is_said(tmp_path: Path) -> None:
    zs: list[float | None] = [0.0, 2.5, 5.0, 20.0, 22.5, 25.0]
    vol = load_series(_series(tmp_path / "irr", zs))
    # the grid keeps both ends and the typical step (not a 30 mm grid dropping the top slice)
    k = vol.shape[0]
    assert vol.spacing[2] <= 2.5 + 1e-6 and abs((k - 1) * vol.spacing[2] - 25.0) < 1e-6
    assert vol.meta["acquired_slice_thickness"] == 2.5
    assert any("resampled" in w and "from the first to the last" in w for w in vol.warnings)


def test_one_slice_without_position_does_not_discard_the_geometry(tmp_path: Path) -> None:
    vol = load_series(_series(tmp_path / "pos", [0.0, 2.5, None, 7.5, 10.0]))
    assert vol.geometry_known and vol.shape[0] == 5  # the gap at 5.0 is said and resampled
    assert any("1 of 5 slices have no ImagePositionPatient" in w for w in vol.warnings)
    none = load_series(_series(tmp_path / "none", [None, None, None]))
    assert not none.geometry_known and any("geometry is unknown" in w for w in none.warnings)


def test_jpeg_folder_never_becomes_a_ct_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos_mr"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(photos / f"p{i}.jpg")
    out = tmp_path / "ct"
    rc = main(["translate", "--input", str(photos), "--out", str(out), "--format", "dicom",
               "--model", "mrct_phantom_student", "--force", "--threads", "1"])
    assert rc == 2 and not out.exists()
    assert "no patient geometry" in capsys.readouterr().err


def test_2d_images_in_and_out_as_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model trained on 2D PNG pairs translates PNG slices into PNGs of the same size and
    grey scale, marked synthetic in their text chunks."""
    rng = np.random.default_rng(2)
    mr_dir, ct_dir = tmp_path / "Patient_01" / "T1", tmp_path / "Patient_01" / "CT"
    for d in (mr_dir, ct_dir):
        d.mkdir(parents=True)
    yy, xx = np.mgrid[:64, :64]
    for i in range(6):
        disc = ((yy - 32) ** 2 + (xx - 30 - i) ** 2) < 400
        mr = np.where(disc, 180, 10) + rng.integers(0, 10, (64, 64))
        ct = np.where(disc, 120, 0) + np.where(disc & (((yy - 32) ** 2 + (xx - 30 - i) ** 2) > 300), 100, 0)
        Image.fromarray(mr.astype(np.uint8)).save(mr_dir / f"{i:03d}.png")
        Image.fromarray(ct.astype(np.uint8)).save(ct_dir / f"{i:03d}.png")
    run = tmp_path / "run"
    assert main(["translate-train", "--method", "unet_l1", "--pair", str(mr_dir), str(ct_dir),
                 "--size", "32", "--base-filters", "4", "--steps", "2", "--batch", "2",
                 "--holdout", "0", "--device", "cpu", "--threads", "1", "--out", str(run)]) == 0
    out = tmp_path / "pred"
    assert main(["translate", "--model", str(run), "--input", str(mr_dir), "--out", str(out),
                 "--threads", "1"]) == 0
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:03d}.png" for i in range(6)]
    with Image.open(pngs[0]) as img:
        assert img.size == (64, 64) and img.mode == "L"
    assert png_text(str(pngs[0]))["SyntheticData"] == "YES"
    # the same model refuses to write a CT series for these images
    assert main(["translate", "--model", str(run), "--input", str(mr_dir), "--out",
                 str(tmp_path / "dcm"), "--format", "dicom"]) == 2


# -- failed writes ------------------------------------------------------------------------------
def _disk_full_on(monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """``os.fsync`` fails with ENOSPC from its ``nth`` call on (what a full disk does)."""
    real = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] >= nth:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_full_disk_nifti_exits_non_zero_and_leaves_nothing(
    phantom_t2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    _disk_full_on(monkeypatch, 2)  # the sidecar goes through, the image does not
    rc = main(["translate", "--input", str(phantom_t2), "--out", str(dest / "s.nii.gz"), "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and "disk is full" in err and "Traceback" not in err
    assert list(dest.iterdir()) == []


def test_full_disk_png_samples_leave_no_partial_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "samples"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    real = Path.write_bytes
    calls = {"n": 0}

    def write_bytes(self: Path, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    rc = main(["sample", "--model", "cxr_cgan_64", "--n", "6", "--out", str(dest)])
    err = capsys.readouterr().err
    assert rc == 1 and "disk is full" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples"]
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_sampling_twice_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert main(["sample", "--model", "cxr_cgan_64", "--n", "2", "--out", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["sample", "--model", "cxr_cgan_64", "--n", "2", "--out", str(out)]) == 2
    assert "already holds" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    # a class mix, names in any case, into the same folder: new files beside the others
    assert main(["sample", "--model", "cxr_cgan_64", "--labels", "normal=2,PNEUMONIA=1",
                 "--seed", "3", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert sum("NORMAL" in n for n in names) == 2 and sum("PNEUMONIA" in n for n in names) == 1


# -- bounded loss in training ---------------------------------------------------------------------
class _Tiny:
    preprocessing = Preprocessing(size=16)

    def __init__(self) -> None:
        self.x = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1

    def __len__(self) -> int:
        return 16

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {"target": self.x[key[0]]}

    def describe(self) -> dict[str, object]:
        return {"kind": "tiny"}


_MC = MethodConfig(size=16, latent_dim=8, base_filters=4)


def test_checkpoints_by_time_and_a_cpu_budget_stop_with_a_checkpoint(tmp_path: Path) -> None:
    cfg = TrainConfig(steps=10_000, batch_size=4, checkpoint_every=100_000, checkpoint_minutes=1e-6,
                      sample_every=0, log_every=1, device="cpu", threads=1, keep_checkpoints=0,
                      cpu_seconds=1.5)
    s = train("dcgan", _MC, cfg, _Tiny(), tmp_path / "run")  # type: ignore[arg-type]
    assert s.stopped_by == StopReason.CPU_BUDGET and 0 < s.step < 10_000
    steps = [st for st, _ in list_checkpoints(tmp_path / "run")]
    assert len(steps) > 2 and steps[-1] == s.step  # by time, and at the stop
    assert s.cpu_seconds >= 1.5


def test_sigterm_stops_training_with_a_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(data / f"{i}.png")
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [*CLI, "train", "--method", "dcgan", "--data", str(data), "--size", "16", "--batch", "4",
         "--steps", "100000", "--out", str(run), "--threads", "1", "--device", "cpu",
         "--set", "checkpoint_every=100000", "--set", "checkpoint_minutes=0", "--set", "log_every=1",
         "--set", "sample_every=0", "--set", "base_filters=4", "--set", "latent_dim=8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 120
        metrics = run / "metrics.jsonl"
        while time.monotonic() < deadline:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 5:
                break
            time.sleep(0.2)
        assert metrics.is_file(), "training did not start"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.decode()
    assert proc.returncode == 143, text
    assert "stopped by SIGTERM" in text and "Traceback" not in text
    ckpts = list_checkpoints(run)
    assert ckpts, "no checkpoint was written on SIGTERM"
    last = json.loads(metrics.read_text().splitlines()[-1])["step"]
    assert ckpts[-1][0] >= last - 1
    assert main(["train", "--resume", str(run), "--steps", str(ckpts[-1][0] + 2)]) == 0


def test_resume_sets_aside_a_state_that_is_not_weights_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    cfg = TrainConfig(steps=4, batch_size=4, checkpoint_every=2, sample_every=0, log_every=1,
                      device="cpu", threads=1, keep_checkpoints=0, data=__import__(
                          "medgan_desktop.core.training.config", fromlist=["DataConfig"]).DataConfig())
    run = tmp_path / "run"
    train("dcgan", _MC, cfg, _Tiny(), run)  # type: ignore[arg-type]
    newest = list_checkpoints(run)[-1][1]
    state = newest.with_name(newest.name.replace(".safetensors", ".state.pt"))
    buf = io.BytesIO()
    torch.save({"step": 4, "payload": Path("/")}, buf)  # a pickled object: not weights-only
    state.write_bytes(buf.getvalue())
    from medgan_desktop.core.jobs.train import ResumeSpec, run_resume

    notes: list[str] = []
    res = run_resume(ResumeSpec(str(run), steps=5),
                     progress=lambda p: notes.append(p.message) if p.event is not None else None)
    assert res.started_at == 2 and res.summary.step == 5
    assert any("not a weights-only file" in n and "set aside" in n for n in notes)
    assert state.with_name(state.name + ".broken").is_file()


# -- the index and small ones -----------------------------------------------------------------------
def test_the_same_instance_through_two_paths_counts_once(
    phantom_t2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "again"
    link.symlink_to(phantom_t2, target_is_directory=True)
    db = tmp_path / "i.sqlite"
    assert main(["import", str(phantom_t2), str(tmp_path / "again" / "."), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["ls", "--json", "--db", str(db)]) == 0
    series = json.loads(capsys.readouterr().out)[0]["studies"][0]["series"]
    assert [s["instances"] for s in series] == [8]


def test_a_file_cut_before_its_pixels_is_a_problem_not_a_series(
    phantom_t2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "cut"
    folder.mkdir()
    data = sorted(phantom_t2.iterdir())[0].read_bytes()
    (folder / "cut.dcm").write_bytes(data[:400])
    db = tmp_path / "i.sqlite"
    assert main(["import", str(folder), "--db", str(db), "--json"]) == 1  # nothing imported
    report = json.loads(capsys.readouterr().out)
    assert report["instances"] == 0 and report["errors"] == 1
    assert "truncated" in report["problems"][0]["reason"]


def test_padding_outside_the_field_of_view_is_not_scored() -> None:
    from medgan_desktop.core.metrics.paired import evaluate_pair

    ref = np.full((3, 32, 32), 40.0, np.float32)
    ref[:, :, :4] = -2048.0  # the scanner's padding, inside the given mask
    pred = ref.copy()
    pred[:, :, :4] = -1000.0  # air there would be a 1048 HU "error"
    mask = np.ones_like(ref, dtype=bool)
    rep = evaluate_pair(Volume(pred, units="HU", modality="CT"), Volume(ref, units="HU", modality="CT"),
                        mask=mask)
    assert rep.mae < 1e-6


def test_closed_pipe_is_not_a_traceback() -> None:
    cmd = f"{sys.executable} -m medgan_desktop.cli models card mrct_phantom_pix2pix | head -n 1"
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=False)
    assert proc.stdout.strip() and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_write_errors_name_the_cause() -> None:
    from medgan_desktop.core.atomic import write_error

    msg = str(write_error(OSError(errno.EROFS, "Read-only"), Path("/x/y.nii.gz"), "the file"))
    assert "read-only" in msg and "Nothing was written" in msg
    assert isinstance(write_error(OSError(errno.ENOSPC, "x"), Path("/x")), WriteError)
