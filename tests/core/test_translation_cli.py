"""``medgan translate`` / ``translate-train`` input checks and paired-data preparation
(registration with the affine stage, pairs from the study index, 2D image pairs, patient
names and splits) on small synthetic MR/CT phantoms."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from medgan_desktop.cli import main
from medgan_desktop.core.jobs.base import JobError
from medgan_desktop.core.jobs.train_translation import (
    PairSpec,
    TranslationTrainSpec,
    run_train_translation,
    split_pairs,
)
from medgan_desktop.core.progress import Cancelled, CancelToken, Progress
from medgan_desktop.core.training.pairs import PairedDataError, PairedVolume, load_image_pair, load_pair, patient_name
from medgan_desktop.core.volume import Volume

FAST = ["--size", "32", "--base-filters", "4", "--steps", "2", "--batch", "2"]
FAST += ["--device", "cpu", "--threads", "1"]


def phantom(
    shape: tuple[int, int, int] = (12, 40, 40), shift: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """An MR and a CT (HU) of one synthetic 'head': an ellipse with a bright ring (bone on CT,
    dark on MR) and an off-centre insert; the CT content is shifted by ``shift`` voxels."""
    nk, nj, ni = shape
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(
        np.arange(nk, dtype=np.float32),
        np.arange(nj, dtype=np.float32),
        np.arange(ni, dtype=np.float32),
        indexing="ij",
    )

    def parts(dx: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = np.sqrt(((i - ni / 2 - dx) / (ni * 0.38)) ** 2 + ((j - nj / 2) / (nj * 0.3)) ** 2)
        body = r < 1.0
        ring = (r > 0.8) & body
        insert = ((i - ni * 0.4 - dx) ** 2 + (j - nj * 0.45) ** 2) < (ni * 0.08) ** 2
        return body, ring, insert & body & (k >= 0)

    body, ring, ins = parts(0.0)
    mr = np.where(body, 300.0, 5.0) + np.where(ring, -220.0, 0.0) + np.where(ins, 250.0, 0.0)
    mr = mr + rng.normal(0, 4, shape)
    body, ring, ins = parts(shift)
    ct = np.where(body, 40.0, -1000.0) + np.where(ring, 900.0, 0.0) + np.where(ins, -40.0, 0.0)
    return mr.astype(np.float32), ct.astype(np.float32)


def write_nifti(path: Path, arr: np.ndarray) -> Path:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 2.0))  # type: ignore[no-untyped-call]
    sitk.WriteImage(img, str(path))
    return path


@pytest.fixture()
def pair_files(tmp_path: Path) -> tuple[Path, Path]:
    mr, ct = phantom()
    return write_nifti(tmp_path / "pat07_mr.nii.gz", mr), write_nifti(
        tmp_path / "pat07_ct.nii.gz", ct
    )


def write_png_patient(root: Path, name: str, n: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """``root/name/{T2,CT}/00k.png``: 8-bit slices, the CT zoomed out and shifted (another FOV)."""
    mr, ct = phantom((n, 64, 64), seed=seed)
    (root / name / "T2").mkdir(parents=True)
    (root / name / "CT").mkdir(parents=True)
    for k in range(n):
        m8 = np.clip(mr[k] / 600.0 * 255.0, 0, 255).astype(np.uint8)
        c = np.clip((ct[k] + 1024.0) / 4024.0 * 255.0, 0, 255)
        t = torch.from_numpy(c)[None, None]
        small = torch.nn.functional.interpolate(t, size=(48, 48), mode="bilinear", antialias=True)
        canvas = np.zeros((72, 72), dtype=np.float32)
        canvas[16:64, 8:56] = small[0, 0].numpy()  # other scale, size and position
        Image.fromarray(m8).save(root / name / "T2" / f"{k + 1:03d}.png")
        Image.fromarray(canvas.astype(np.uint8)).save(root / name / "CT" / f"{k + 1:03d}.png")
    return root / name / "T2", root / name / "CT"


def run_json(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / "run.json").read_text(encoding="utf-8"))
    return data


# -- medgan translate: checks before any work -------------------------------------------------
@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_translate_without_the_gpu_asked_for_is_a_clear_error(
    device: str,
    pair_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(
        [
            "translate",
            "--model",
            "mrct_phantom_student",
            "--input",
            str(pair_files[0]),
            "--out",
            str(tmp_path / "s.nii.gz"),
            "--device",
            device,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "no CUDA GPU is available" in err and "Traceback" not in err


def test_translate_checks_the_output_before_loading(
    pair_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing_model = str(tmp_path / "no-such-run")  # reached only if the output check passed
    base = ["translate", "--model", missing_model, "--input", str(pair_files[0])]
    assert main([*base, "--format", "nifti", "--out", str(tmp_path / "x.png")]) == 2
    assert "must end in .nii.gz" in capsys.readouterr().err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    assert main([*base, "--format", "dicom", "--out", str(full)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main([*base, "--format", "dicom", "--out", str(full / "keep.txt")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main([*base, "--out", str(full / "keep.txt" / "x.nii.gz")]) == 2
    assert "cannot create" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.nii.gz"), "--batch", "0"]) == 2
    assert "batch must be at least 1" in capsys.readouterr().err
    # A valid output reaches the model check.
    assert main([*base, "--out", str(tmp_path / "new" / "x.nii.gz")]) == 2
    assert "no-such-run" in capsys.readouterr().err


def test_translate_refuses_a_model_that_is_not_for_translation(
    pair_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "translate",
            "--model",
            "feature_extractor",
            "--input",
            str(pair_files[0]),
            "--out",
            str(tmp_path / "s.nii.gz"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "not a translation model" in err and "unknown GAN method" not in err


def test_translate_refuses_2d_images_for_a_volume_model_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PNG has no patient geometry and no modality: a model trained on phantom volumes does
    not fit it (refused, exit 2, naming why); forced, it runs and says what it assumed."""
    mr, _ = phantom((1, 64, 64))
    png = tmp_path / "seed5_0000.png"
    Image.fromarray(np.clip(mr[0] / 600 * 255, 0, 255).astype(np.uint8)).save(png)
    out = tmp_path / "s.nii.gz"
    base = ["translate", "--model", "mrct_phantom_student", "--input", str(png), "--out", str(out),
            "--threads", "1"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "patient geometry" in err and not out.exists()
    assert main([*base, "--force"]) == 0 and out.is_file()
    err = capsys.readouterr().err
    assert "warning: input modality unknown; assumed MR" in err
    assert "single slice given to a 2.5D model" in err
    assert "Translated anyway (forced)" in err


# -- medgan translate-train: errors ---------------------------------------------------------------
def test_translate_train_with_too_few_slices_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mr_dir, ct_dir = write_png_patient(tmp_path, "P1", n=1)
    rc = main(
        [
            "translate-train",
            "--method",
            "pix2pix",
            "--pair",
            str(mr_dir / "001.png"),
            str(ct_dir / "001.png"),
            "--out",
            str(tmp_path / "run"),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "too few" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "run.json").exists()


def test_translate_train_flag_combinations(
    pair_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = ["--pair", str(pair_files[0]), str(pair_files[1])]
    out = ["--out", str(tmp_path / "run")]
    assert main(["translate-train", "--method", "pix2pix", *out, *FAST]) == 2
    assert "--pair SOURCE TARGET" in capsys.readouterr().err
    assert main(["translate-train", "--method", "pix2pix", *pair, "--affine", *out, *FAST]) == 2
    assert "add --register" in capsys.readouterr().err
    assert main(["translate-train", "--method", "pix2pix", *pair, "--patient", "A", *out]) == 2
    assert "add --from-index" in capsys.readouterr().err
    assert main(["translate-train", "--method", "dcgan", *pair, *out]) == 2
    assert "not a translation method" in capsys.readouterr().err
    assert main(["translate-train", "--method", "pix2pix", *pair, *out, "--batch", "0"]) == 2
    assert "batch must be at least 1" in capsys.readouterr().err


# -- data preparation -------------------------------------------------------------------------------
def test_patient_names_from_files_and_folders(tmp_path: Path) -> None:
    assert patient_name(tmp_path / "pat07_mr.nii.gz") == "pat07_mr"
    (tmp_path / "Patient_01" / "T2").mkdir(parents=True)
    (tmp_path / "Patient_01" / "T2" / "001.png").write_bytes(b"")
    assert patient_name(tmp_path / "Patient_01" / "T2") == "Patient_01"
    assert patient_name(tmp_path / "Patient_01" / "T2" / "001.png") == "Patient_01"
    (tmp_path / "series_a").mkdir()
    assert patient_name(tmp_path / "series_a") == "series_a"


def test_load_pair_names_the_patient_and_refuses_swapped_modalities(
    pair_files: tuple[Path, Path],
) -> None:
    pair = load_pair(*pair_files)
    assert pair.patient == "pat07_mr" and pair.registration is None
    assert pair.source.modality == "MR" and pair.target.units == "HU"
    with pytest.raises(PairedDataError, match="not MR"):
        load_pair(pair_files[1], pair_files[0])


def _pv(patient: str, n: int = 6) -> PairedVolume:
    mr, ct = phantom((n, 16, 16))
    return PairedVolume(Volume(mr, modality="MR"), Volume(ct, modality="CT", units="HU"), patient)


def test_split_keeps_all_pairs_of_a_patient_on_one_side() -> None:
    pairs = [_pv("A"), _pv("A"), _pv("B"), _pv("C")]
    for seed in range(6):
        train, test, split = split_pairs(pairs, 0.3, 0, seed)
        assert split["kind"] == "patient"
        train_ids = {p.patient for p in train}
        test_ids = {p.patient for p, _ in test}
        assert not train_ids & test_ids
        assert sum(p.patient == "A" for p in train) in (0, 2)  # T1 and T2 of A stay together
    with pytest.raises(PairedDataError, match="needs two patients"):
        split_pairs([_pv("A"), _pv("A")], 0.3, 0, 0)
    train, test, split = split_pairs([_pv("A"), _pv("A")], 0.0, 0, 0)
    assert split == {"kind": "none"} and len(train) == 2 and test == []
    train, test, split = split_pairs([_pv("A", 12)], 0.25, 1, 0)
    assert split["kind"] == "slab" and max(train[0].slices or ()) + 2 < min(test[0][1])


def test_register_affine_and_the_printed_quality(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mr, ct = phantom((12, 40, 40), shift=3.0)
    a = write_nifti(tmp_path / "a_mr.nii.gz", mr), write_nifti(tmp_path / "a_ct.nii.gz", ct)
    run = tmp_path / "run"
    rc = main(
        [
            "translate-train",
            "--method",
            "pix2pix",
            "--pair",
            str(a[0]),
            str(a[1]),
            "--register",
            "--affine",
            "--holdout",
            "0.25",
            "--out",
            str(run),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    data = run_json(run)["data"]
    reg = data["registration"][0]
    assert reg["stages"][0] == "rigid" and reg["final_mi"] > reg["initial_mi"]
    assert f"MI {reg['initial_mi']:.3f} -> {reg['final_mi']:.3f}" in err
    assert "patient a_mr" in err
    assert data["pair_details"][0]["patient"] == "a_mr"
    assert data["split"]["kind"] == "slab"
    assert (run / "heldout_metrics.json").is_file()


def test_affine_reaches_the_registration(
    pair_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import medgan_desktop.core.training.pairs as registration

    seen: dict[str, Any] = {}
    real = registration.register_volumes

    def spy(fixed: Volume, moving: Volume, **kw: Any) -> Any:
        seen.update(kw)
        return real(fixed, moving, **{**kw, "try_orientations": False, "iterations": 5})

    monkeypatch.setattr(registration, "register_volumes", spy)
    load_pair(*pair_files, register=True, affine=True)
    assert seen["affine"] is True


def test_2d_image_pairs_are_registered_per_slice(tmp_path: Path) -> None:
    mr_dir, ct_dir = write_png_patient(tmp_path, "Patient_01", n=3)
    pair = load_image_pair(mr_dir, ct_dir, register=True, affine=True, max_side=64)
    assert pair.patient == "Patient_01"
    assert pair.source.shape == pair.target.shape == (3, 64, 64)
    assert pair.target.units == "HU" and float(pair.target.array.min()) >= -1024
    q = pair.registration
    assert q is not None and q["slices"] == 3 and q["final_mi"] > q["initial_mi"]
    # After registration the CT body lies over the MR body.
    body_mr = pair.source.array > 15  # 8-bit MR: background ~2, the dark ring ~34
    body_ct = pair.target.array > -500
    dice = 2 * (body_mr & body_ct).sum() / (body_mr.sum() + body_ct.sum())
    assert dice > 0.93
    unreg = load_image_pair(mr_dir, ct_dir, register=False, max_side=64)
    body_u = unreg.target.array > -500
    assert 2 * (body_mr & body_u).sum() / (body_mr.sum() + body_u.sum()) < 0.75


def test_translate_train_on_2d_pairs_splits_by_patient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["translate-train", "--method", "pix2pix", "--register", "--holdout", "0.5"]
    for i, name in enumerate(("Patient_01", "Patient_02")):
        mr_dir, ct_dir = write_png_patient(tmp_path / "data", name, n=4, seed=i)
        args += ["--pair", str(mr_dir), str(ct_dir)]
    run = tmp_path / "run"
    assert main([*args, "--out", str(run), *FAST]) == 0
    err = capsys.readouterr().err
    assert "patient Patient_01" in err and "patient Patient_02" in err and "MI " in err
    split = run_json(run)["data"]["split"]
    assert split["kind"] == "patient"
    assert sorted(split["train_patients"] + split["test_patients"]) == ["Patient_01", "Patient_02"]


def test_translate_train_from_the_study_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medgan_desktop.core.dicom.index import StudyIndex
    from medgan_desktop.core.dicom.write import write_volume_series

    db = tmp_path / "index.sqlite"
    for n, pid in enumerate(("PAT-A", "PAT-B")):
        mr, ct = phantom((8, 32, 32), seed=n)
        for kind, arr in (("MR", mr), ("CT", ct)):
            vol = Volume(
                arr,
                spacing=(1.0, 1.0, 2.0),
                modality=kind,
                units="HU" if kind == "CT" else "scanner",
            )
            write_volume_series(
                vol,
                tmp_path / "dicom" / pid / kind,
                patient_name=pid,
                patient_id=pid,
                series_description=kind,
                frame_of_reference_uid=None,
            )
    with StudyIndex(db) as index:
        index.import_paths([tmp_path / "dicom"])
    base = ["translate-train", "--method", "pix2pix", "--from-index", "--db", str(db), *FAST]
    run = tmp_path / "both"
    assert main([*base, "--holdout", "0.5", "--out", str(run)]) == 0
    data = run_json(run)["data"]
    assert sorted(d["patient"] for d in data["pair_details"]) == ["PAT-A", "PAT-B"]
    assert data["split"]["kind"] == "patient"
    assert run_json(run)["train_config"]["data"]["kind"] == "index"
    one = tmp_path / "one"
    assert main([*base, "--patient", "PAT-B", "--out", str(one)]) == 0
    data = run_json(one)["data"]
    assert [d["patient"] for d in data["pair_details"]] == ["PAT-B"]
    assert data["split"]["kind"] == "slab"
    capsys.readouterr()
    assert main([*base, "--patient", "PAT-Z", "--out", str(tmp_path / "z")]) == 2
    assert "PAT-A, PAT-B" in capsys.readouterr().err


# -- the job itself -----------------------------------------------------------------------------------
def test_job_reports_stages_and_cancels(pair_files: tuple[Path, Path], tmp_path: Path) -> None:
    spec = TranslationTrainSpec(
        method="unet_l1",
        pairs=(PairSpec(str(pair_files[0]), str(pair_files[1])),),
        out=str(tmp_path / "run"),
        size=32,
        base_filters=4,
        steps=2,
        batch=2,
        device="cpu",
        threads=1,
    )
    reports: list[Progress] = []
    res = run_train_translation(spec, progress=reports.append)
    kinds = [type(r.event).__name__ for r in reports]
    first_step = kinds.index("StepEvent")
    assert kinds.index("PairEvent") < first_step
    held = [r.message for r in reports[:first_step] if "held out" in r.message]
    assert held and "slices" in held[0]  # the held-out part is said before training
    evaluate = [i for i, r in enumerate(reports) if getattr(r.event, "stage", "") == "evaluate"]
    assert evaluate and evaluate[0] > first_step
    assert res.summary.step == 2 and res.heldout is not None and res.n_slices > 0
    assert res.pairs[0].patient == "pat07_mr" and res.split["kind"] == "slab"
    assert (
        json.loads((res.run_dir / "heldout_metrics.json").read_text())["mae"] == res.heldout["mae"]
    )
    with pytest.raises(JobError, match="already holds a run"):
        run_train_translation(spec)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run_train_translation(replace(spec, out=str(tmp_path / "other")), cancel=token)
    assert not (tmp_path / "other" / "run.json").exists()


def test_translate_by_folder_path_checks_catalogued_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A catalogued model given as its folder path is verified like its id: tampered weights refused."""
    from medgan_desktop.cli import main as cli
    from medgan_desktop.core.models.registry import ModelRegistry

    repo = Path(__file__).resolve().parents[2]
    entry = ModelRegistry().import_model(repo / "models" / "mrct_phantom_student", "student_copy")
    w = entry.weights_path
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    import numpy as np
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.full((4, 16, 16), 100, np.float32))
    sitk.WriteImage(img, str(tmp_path / "mr.nii.gz"))
    for ref in ("student_copy", str(entry.folder)):
        rc = cli(["translate", "--model", ref, "--input", str(tmp_path / "mr.nii.gz"),
                  "--out", str(tmp_path / "o.nii.gz"), "--format", "nifti"])
        assert rc == 2, ref
        assert "sha256" in capsys.readouterr().err.lower()
    assert not (tmp_path / "o.nii.gz").exists()
