"""Write volumes and images as DICOM: synthetic series marked honestly, plain conversions.

* :func:`write_synthetic_series`: a model's output volume as CT (or MR) Image Storage on
  the source series' grid, marked as synthetic (``SyntheticData=YES``, ``DERIVED``,
  Derivation Description, Source Image Sequence, Contributing Equipment "Synthesizing
  Equipment", a "SYNTHETIC" series description), then de-identified by the PS3.15
  anonymiser unless the user writes it into the source study on purpose.
* :func:`write_secondary_capture`: sampled 2D images as Secondary Capture (``SYN``).
* :func:`write_volume_series`: a plain (non-synthetic) volume conversion.

Everything is written into a temp folder and moved into place only when complete.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from medgan_desktop import __version__
from medgan_desktop.core.atomic import atomic_output_dir
from medgan_desktop.core.dicom.anonymize import AnonymizeOptions, Anonymizer
from medgan_desktop.core.dicom.reader import SYNTHESIZER, DicomReadError, dcmread_header
from medgan_desktop.core.progress import CancelToken, Progress, ProgressCallback, no_progress
from medgan_desktop.core.types import PixelArray
from medgan_desktop.core.volume import Volume

__all__ = [
    "CT_IMAGE_STORAGE",
    "MR_IMAGE_STORAGE",
    "SC_IMAGE_STORAGE",
    "write_secondary_capture",
    "write_synthetic_series",
    "write_volume_series",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
_SOP_CLASS = {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}
MANUFACTURER = SYNTHESIZER


class GeometryUnknownError(ValueError):
    """The volume has no patient geometry, so it cannot be written as CT/MR Image Storage."""


_PATHLIKE = re.compile(r"(?:[A-Za-z]:)?(?:[^\s:;,'\"]*[/\\])+[^\s:;,'\"]*")


def provenance_notes(warnings: Sequence[str]) -> tuple[str, ...]:
    """Loader warnings fit to travel with an output: file and folder names removed.

    A warning may name the files it is about ("2 unreadable files left out: /data/Smith
    John/IM1"); paths carry identity, so they are replaced by ``<file>``.
    """
    return tuple(_PATHLIKE.sub("<file>", w) for w in warnings if w)


def read_source_headers(files: Sequence[str | Path]) -> list[Dataset | None]:
    """The headers of a volume's source files, one per file (None where unreadable).

    An unreadable header costs only its own Source Image reference, never the others'.
    """
    out: list[Dataset | None] = []
    for f in files:
        try:
            out.append(dcmread_header(Path(f)))
        except (DicomReadError, OSError):
            out.append(None)
    return out
_DEFAULT_ANON = AnonymizeOptions()

_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
                  "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName",
                  "StudyID", "AccessionNumber", "StudyDescription", "PatientPosition",
                  "PositionReferenceIndicator", "IssuerOfPatientID", "BodyPartExamined",
                  "Laterality")


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _ds_num(x: float) -> str:
    """A DS string (<= 16 characters)."""
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s if len(s) <= 16 else f"{x:.8g}"


def _to_int16(array: PixelArray) -> NDArray[np.int16]:
    a = np.asarray(array, dtype=np.float64)
    a = np.nan_to_num(a, nan=0.0, posinf=32767.0, neginf=-32768.0)
    return np.clip(np.rint(a), -32768, 32767).astype(np.int16)


def _file_meta(ds: Dataset) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MEDGAN_{__version__}"[:16]
    ds.file_meta = meta


def _now() -> tuple[str, str]:
    now = dt.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _image_datasets(volume: Volume, sop_class: str, common: Dataset, *,
                    image_type: list[str], series_number: int) -> list[Dataset]:
    """One CT/MR image dataset per slice of ``volume`` on its own grid."""
    nk, nj, ni = volume.shape
    si, sj, sk = (float(s) for s in volume.spacing)
    d = np.asarray(volume.direction, dtype=np.float64)
    row_dir, col_dir, normal = d[:, 0], d[:, 1], d[:, 2]
    pixels = _to_int16(volume.array)
    thickness = float(volume.meta.get("acquired_slice_thickness") or sk)
    modality = "CT" if sop_class == CT_IMAGE_STORAGE else "MR"
    series_uid = str(generate_uid())
    date, time = _now()
    out = []
    for k in range(nk):
        ds = Dataset()
        ds.update(common)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = str(generate_uid())
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDate, ds.SeriesTime = date, time
        ds.ContentDate, ds.ContentTime = date, time
        ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        # value 3 AXIAL is a CT defined term; MR requires a value 3 and uses OTHER here
        ds.ImageType = image_type if modality == "CT" else [*image_type[:2], "OTHER"]
        ds.Manufacturer = common.get("Manufacturer", MANUFACTURER)
        pos = np.asarray(volume.origin, dtype=np.float64) + normal * sk * k
        ds.ImagePositionPatient = [_ds_num(v) for v in pos]
        ds.ImageOrientationPatient = [_ds_num(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [_ds_num(sj), _ds_num(si)]  # row spacing, column spacing
        ds.SliceThickness = _ds_num(thickness)
        if thickness != sk:  # resampled along the normal: the grid step is not the thickness
            ds.SpacingBetweenSlices = _ds_num(sk)
        ds.SliceLocation = _ds_num(float(pos @ normal))
        ds.PatientOrientation = ""
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = nj, ni
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.BurnedInAnnotation = "NO"
        if "BodyPartExamined" not in ds and "Laterality" not in ds:
            ds.Laterality = ""  # Type 2C: empty = unknown (no body part to decide on)
        if modality == "CT":
            ds.RescaleIntercept = "0"
            ds.RescaleSlope = "1"
            ds.RescaleType = "HU"
            ds.KVP = ""
        else:
            ds.ScanningSequence = "RM"  # research mode: not an acquisition sequence
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "2D"
            ds.RepetitionTime = ""
            ds.EchoTime = ""
            ds.EchoTrainLength = ""
            ds.SpacingBetweenSlices = _ds_num(sk)
        window = volume.meta.get("window")
        if modality == "CT":
            ds.WindowCenter, ds.WindowWidth = (window or (40, 400))
        ds.PixelData = np.ascontiguousarray(pixels[k]).tobytes()
        _file_meta(ds)
        out.append(ds)
    return out


def _study_common(source: Dataset | None, volume: Volume, *, patient_name: str | None = None,
                  patient_id: str | None = None, study_uid: str | None = None) -> Dataset:
    common = Dataset()
    if source is not None:
        for kw in _PATIENT_STUDY:
            if kw in source:
                common[kw] = source[kw]
        if "FrameOfReferenceUID" in source:
            common.FrameOfReferenceUID = source.FrameOfReferenceUID
    src = volume.source
    common.PatientName = patient_name if patient_name is not None else common.get(
        "PatientName", src.patient_name)
    common.PatientID = patient_id if patient_id is not None else common.get(
        "PatientID", src.patient_id)
    common.StudyInstanceUID = study_uid or common.get("StudyInstanceUID") or (
        src.study_instance_uid or str(generate_uid()))
    if "FrameOfReferenceUID" not in common:
        common.FrameOfReferenceUID = src.frame_of_reference_uid or str(generate_uid())
    for kw in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
               "ReferringPhysicianName", "StudyID", "AccessionNumber",
               "PositionReferenceIndicator"):
        if kw not in common:
            setattr(common, kw, "")
    if "PatientPosition" not in common:
        common.PatientPosition = "HFS"
    return common


def _mark_synthetic(ds: Dataset, *, model_id: str, model_version: str, software_version: str,
                    source_modality: str, notes: Sequence[str] = (), label: str = "") -> None:
    """The honest marking of a synthetic image (authored here: it holds no identity).

    ``notes`` (what happened to the geometry on the way: resampling, slices left out) are
    recorded in the Derivation Description, so the provenance travels with the file.
    """
    what = f"{model_id} {model_version}".strip()
    ds.SyntheticData = "YES"
    ds.SeriesDescription = " ".join(f"SYNTHETIC {ds.get('Modality', '')} {label} {what}".split())[:64]
    text = (
        f"SYNTHETIC image generated by model {model_id} version {model_version} "
        f"(medgan_desktop {software_version}) from a {source_modality or 'source'} series; "
        "not an acquired image, not for diagnosis."
    )
    if notes:
        text += " Source notes: " + "; ".join(provenance_notes(notes))
    ds.DerivationDescription = text[:1024]
    eq = Dataset()
    eq.Manufacturer = MANUFACTURER
    eq.ManufacturerModelName = model_id[:64]
    eq.SoftwareVersions = [f"medgan_desktop {software_version}"[:64], what[:64]]
    eq.ContributionDescription = (
        f"Synthesizing Equipment: model {model_id} version {model_version}"
    )
    eq.PurposeOfReferenceCodeSequence = [_code("109100", "DCM", "Synthesizing Equipment")]
    ds.ContributingEquipmentSequence = [eq]


def _source_refs(sources: Sequence[Dataset | None], k: int, nk: int) -> list[Dataset]:
    picked = [sources[k]] if len(sources) == nk else list(sources)
    refs = []
    for s in picked:
        if s is None or "SOPInstanceUID" not in s:
            continue
        r = Dataset()
        r.ReferencedSOPClassUID = s.get("SOPClassUID", MR_IMAGE_STORAGE)
        r.ReferencedSOPInstanceUID = s.SOPInstanceUID
        r.PurposeOfReferenceCodeSequence = [
            _code("121322", "DCM", "Source image for image processing operation")
        ]
        refs.append(r)
    return refs


def _save_all(datasets: list[Dataset], out_dir: Path, progress: ProgressCallback,
              cancel: CancelToken | None) -> list[Path]:
    out = Path(out_dir).expanduser().resolve()
    names = [f"IM{n + 1:05d}.dcm" for n in range(len(datasets))]
    with atomic_output_dir(out) as tmp:
        for n, (ds, name) in enumerate(zip(datasets, names, strict=True)):
            if cancel is not None:
                cancel.check()
            ds.save_as(tmp / name, enforce_file_format=True)
            progress(Progress(n + 1, len(datasets), f"wrote {n + 1}/{len(datasets)}"))
    return [out / name for name in names]


def write_synthetic_series(
    volume: Volume,
    out_dir: Path,
    *,
    source_datasets: Sequence[Dataset | None] | None,
    model_id: str,
    model_version: str,
    software_version: str = __version__,
    sop_class: str | None = None,
    within_source_study: bool = False,
    anonymize: AnonymizeOptions | None = _DEFAULT_ANON,
    anonymizer: Anonymizer | None = None,
    series_number: int | None = None,
    label: str = "",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write a synthetic volume as CT or MR Image Storage, one file per slice.

    Args:
        volume: the synthetic image on the source grid (CT in HU).
        out_dir: the folder to create (must not exist or be empty).
        source_datasets: headers of the source series (for patient/study, Frame of
            Reference and Source Image Sequence); slice k refers to source k when the
            counts match, else to all of them.
        model_id: the model that produced the image.
        model_version: its version.
        software_version: the application version.
        sop_class: "CT" or "MR"; from ``volume.modality`` when None.
        within_source_study: keep the patient module and the source study (explicit
            choice, for PACS review next to the source); no anonymisation.
        anonymize: anonymiser options used otherwise.
        anonymizer: a job anonymiser to share (so UIDs match a source exported with it).
        series_number: SeriesNumber (source + 1000 by default).
        label: what the series holds beyond the image itself, in its description (e.g.
            "UNCERTAINTY SD HU" for an uncertainty map).

    Returns:
        The written files, in slice order.

    Raises:
        GeometryUnknownError: the volume has no patient geometry (2D images): a CT/MR
            series would state a position, orientation and spacing nobody measured.
        WriteError: the write failed (nothing is left in ``out_dir``).
    """
    kind = (sop_class or volume.modality or "CT").upper()
    if kind not in _SOP_CLASS:
        raise ValueError(f"synthetic series are written as CT or MR, not {kind!r}")
    if not volume.geometry_known:
        raise GeometryUnknownError(
            "the source has no patient geometry (2D images such as PNG/JPEG), so the result "
            f"cannot be written as a {kind} series with invented spacing and position; "
            "write PNG images instead"
        )
    sources = list(source_datasets or [])
    first = next((s for s in sources if s is not None), None)
    if not within_source_study and anonymize is None and anonymizer is None:
        raise ValueError("a synthetic series leaves the source study only anonymised: "
                         "pass anonymize options or within_source_study=True")
    common = _study_common(first, volume)
    src_modality = str(first.get("Modality", "")) if first is not None else ""
    if series_number is None:
        base = volume.source.series_number or (int(first.get("SeriesNumber", 0) or 0)
                                               if first is not None else 0)
        series_number = int(base) + 1000
    datasets = _image_datasets(volume, _SOP_CLASS[kind], common,
                               image_type=["DERIVED", "SECONDARY", "AXIAL"],
                               series_number=series_number)
    nk = len(datasets)
    for k, ds in enumerate(datasets):
        refs = _source_refs(sources, k, nk)
        if refs:
            ds.SourceImageSequence = refs
        _mark_synthetic(ds, model_id=model_id, model_version=model_version,
                        software_version=software_version, source_modality=src_modality,
                        notes=volume.warnings, label=label)
    if not within_source_study:
        job = anonymizer or Anonymizer(replace(anonymize or _DEFAULT_ANON))
        anonymised = []
        for ds in datasets:
            anon, _ = job.anonymize_dataset(ds)
            # the marking is authored here (no identity): restore what the profile removes
            _mark_synthetic(anon, model_id=model_id, model_version=model_version,
                            software_version=software_version, source_modality=src_modality,
                            notes=volume.warnings, label=label)
            anonymised.append(anon)
        datasets = anonymised
    return _save_all(datasets, out_dir, progress, cancel)


def _to_uint8(image: PixelArray, value_range: tuple[float, float] | None) -> NDArray[np.uint8]:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].mean(axis=-1)
    if a.ndim != 2:
        raise ValueError(f"a 2D image is needed, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.uint8, copy=False)
    lo, hi = value_range if value_range is not None else (float(a.min()), float(a.max()))
    scaled = (a.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def write_secondary_capture(
    images: Sequence[PixelArray],
    out_dir: Path,
    *,
    description: str,
    model_id: str,
    model_version: str = "",
    software_version: str = __version__,
    value_range: tuple[float, float] | None = (-1.0, 1.0),
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write sampled 2D images as Secondary Capture (ConversionType SYN), marked synthetic.

    The images come from a generator, not a patient: the patient is a fixed "SYNTHETIC"
    placeholder and each call makes a new study and series.

    Args:
        images: 2D arrays (uint8 kept; float scaled from ``value_range``, or min/max when None).
        out_dir: the folder to create.
        description: appended to "SYNTHETIC" in the series description.
        model_id: the generating model.
        model_version: its version.
    """
    if not images:
        raise ValueError("no images to write")
    study_uid, series_uid = str(generate_uid()), str(generate_uid())
    date, time = _now()
    datasets = []
    for n, img in enumerate(images):
        px = _to_uint8(img, value_range)
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = SC_IMAGE_STORAGE
        ds.SOPInstanceUID = str(generate_uid())
        ds.PatientName = "SYNTHETIC^IMAGES"
        ds.PatientID = "SYNTHETIC"
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.StudyInstanceUID = study_uid
        ds.StudyDate, ds.StudyTime = date, time
        ds.ReferringPhysicianName = ""
        ds.StudyID = "SYN"
        ds.AccessionNumber = ""
        ds.Modality = "OT"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.InstanceNumber = n + 1
        ds.ContentDate, ds.ContentTime = date, time
        ds.PatientOrientation = ""
        ds.ConversionType = "SYN"
        ds.Laterality = ""  # Type 2C, unknown: a generated image has no body side
        ds.Manufacturer = MANUFACTURER
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.BurnedInAnnotation = "NO"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = px.shape
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = np.ascontiguousarray(px).tobytes()
        _mark_synthetic(ds, model_id=model_id, model_version=model_version,
                        software_version=software_version, source_modality="")
        ds.SeriesDescription = f"SYNTHETIC {description}".strip()[:64]
        _file_meta(ds)
        datasets.append(ds)
    return _save_all(datasets, out_dir, progress, cancel)


def write_volume_series(
    volume: Volume,
    out_dir: Path,
    *,
    patient_name: str,
    patient_id: str,
    study_uid: str | None = None,
    series_description: str,
    synthetic: bool = False,
    series_number: int = 1,
    frame_of_reference_uid: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write a volume as a plain CT/MR series (e.g. the sample-study builder's conversions).

    Args:
        volume: CT (HU) or MR volume.
        out_dir: the folder to create.
        patient_name: PatientName to write.
        patient_id: PatientID to write.
        study_uid: join an existing study (new one when None).
        series_description: the series description.
        synthetic: mark as synthetic (SyntheticData=YES, DERIVED, "SYNTHETIC" prefix).
        series_number: SeriesNumber.
        frame_of_reference_uid: share a Frame of Reference with another series.
    """
    kind = (volume.modality or "").upper()
    if kind not in _SOP_CLASS:
        raise ValueError(f"only CT and MR volumes are written as image series, not {kind!r}")
    common = _study_common(None, volume, patient_name=patient_name, patient_id=patient_id,
                           study_uid=study_uid)
    if frame_of_reference_uid:
        common.FrameOfReferenceUID = frame_of_reference_uid
    image_type = ["DERIVED", "SECONDARY", "AXIAL"] if synthetic else ["ORIGINAL", "PRIMARY",
                                                                      "AXIAL"]
    datasets = _image_datasets(volume, _SOP_CLASS[kind], common, image_type=image_type,
                               series_number=series_number)
    for ds in datasets:
        if synthetic:
            _mark_synthetic(ds, model_id=str(volume.meta.get("model_id", "unknown")),
                            model_version=str(volume.meta.get("model_version", "")),
                            software_version=__version__, source_modality="")
            ds.SeriesDescription = f"SYNTHETIC {series_description}"[:64]
        else:
            ds.SeriesDescription = series_description[:64]
    return _save_all(datasets, out_dir, progress, cancel)
