"""De-identification by the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Every attribute at every sequence depth is handled by its Table E.1-1 row (edition
:data:`~medgan_desktop.core.dicom.profile.EDITION`, see :mod:`.profile`) under the options
the user switched on; private attributes are removed (or only the Retain Safe Private
list kept), overlays (60xx) and curves (50xx) removed, free-text ``...Comments``
attributes removed, and UIDs remapped consistently for a whole job so references
(Study, Series, SOP Instance, Frame of Reference, and any reference inside sequences)
still resolve inside the export. The result carries ``PatientIdentityRemoved=YES``,
``DeidentificationMethod(CodeSequence)`` and ``LongitudinalTemporalInformationModified``.

Beyond the table (:mod:`.anonymize_rules`), what the product cannot vouch for is removed:
even-group attributes no dictionary knows, elements that stay UN once decoded as the
dictionary VR, and standard text, name and date attributes the table does not list (but
for a short allow list needed to use the image); the preamble is zeroed and the file meta
group rebuilt from nothing. Output names never derive from source names
(``S001/SE001/IM00001.dcm``); the report (:mod:`.anonymize_report`), which names the
sources, is never written into the export.

A folder or file list is exported file by file: a source that cannot be read, cannot be
de-identified or does not make a complete instance (SOP Class and Instance UID, pixel data
with every frame) is skipped with a one-line reason while the others are written, and the
report then says ``written with problems``.

Edition: the table is the one packaged with the product (2024b, generated from the
innolitics extraction of Table E.1-1). No maintained package carrying a newer edition of
the table is installed with the product, and the anonymiser never fetches one at run
time (workstations are offline), so the packaged edition is the one applied and named in
``DeidentificationMethod``.

Not done (and not claimed): cleaning burned-in pixel text, or text inside compressed pixel
streams. Images that may carry it are refused unless the user accepts the risk
(:class:`BurnedInAnnotationError`).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom._uid_dict import UID_dictionary
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from medgan_desktop import __version__
from medgan_desktop.core.atomic import atomic_output_dir, check_output_dir
from medgan_desktop.core.dicom import anonymize_rules as rules
from medgan_desktop.core.dicom import profile
from medgan_desktop.core.dicom.anonymize_output import OutputLayout, save_instance
from medgan_desktop.core.dicom.anonymize_report import ActionRecord, AnonymizeReport, FileResult
from medgan_desktop.core.dicom.profile import OPTION_CODES, Option
from medgan_desktop.core.progress import Cancelled, CancelToken, Progress, ProgressCallback, no_progress

__all__ = [
    "ActionRecord",
    "AnonymizeOptions",
    "AnonymizeReport",
    "Anonymizer",
    "BurnedInAnnotationError",
    "FileResult",
    "MalformedDatasetError",
    "anonymize_folder",
    "burned_in_reason",
]

#: Modalities whose images commonly have patient details burned into the pixels.
BURNED_IN_MODALITIES = frozenset({"US", "IVUS", "SC", "XA", "RF", "XC", "ES", "OT", "GM", "SM",
                                  "DOC", "OP", "OPT", "ECG", "HD"})
_SC_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "AE"})
_DUMMY_TEXT = "ANONYMIZED"
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_KEEP_UID_KEYWORD_SUFFIXES = ("ClassUID", "TransferSyntaxUID", "CodingSchemeUID",
                              "ContextUID", "MappingResourceUID")


@dataclass(frozen=True)
class AnonymizeOptions:
    """What the user chose to keep (PS3.15 options) and the pseudonym to use.

    Args:
        pseudonym_name: PatientName in the export (generated when None).
        pseudonym_id: PatientID in the export (generated when None).
        retain_longitudinal: keep temporal information; dates are shifted by one offset
            per patient (Modified Dates option) unless ``date_offset_days == 0`` (Full
            Dates option).
        retain_patient_chars: keep age, sex, size, weight, ... (Retain Patient Characteristics).
        retain_device: keep device serial numbers, station names, ... and the manufacturer,
            model and software versions (Retain Device Identity).
        retain_safe_private: keep the private attributes PS3.15 Table E.3.10-1 lists as safe
            (matched by private creator, group and element offset, with the listed VR/VM),
            at any sequence depth (Retain Safe Private).
        clean_descriptors: keep descriptions after removing identifying text (Clean Descriptors).
        accept_burned_in: export images that may have text burned into the pixels.
        date_offset_days: the shift for retained dates; None = a random offset per patient.
    """

    pseudonym_name: str | None = None
    pseudonym_id: str | None = None
    retain_longitudinal: bool = False
    retain_patient_chars: bool = False
    retain_device: bool = False
    retain_safe_private: bool = False
    clean_descriptors: bool = False
    accept_burned_in: bool = False
    date_offset_days: int | None = None

    @property
    def full_dates(self) -> bool:
        return self.retain_longitudinal and self.date_offset_days == 0

    def enabled(self) -> tuple[Option, ...]:
        """Enabled Table E.1-1 option columns, in the order they take priority."""
        out: list[Option] = []
        if self.retain_longitudinal:
            out.append(Option.LONG_FULL_DATES if self.full_dates else Option.LONG_MODIF_DATES)
        if self.retain_patient_chars:
            out.append(Option.PATIENT_CHARS)
        if self.retain_device:
            out.append(Option.DEVICE_ID)
        if self.retain_safe_private:
            out.append(Option.SAFE_PRIVATE)
        if self.clean_descriptors:
            out.append(Option.CLEAN_DESCRIPTORS)
        return tuple(out)


class BurnedInAnnotationError(ValueError):
    """An image may carry identifying text in its pixels and the user has not accepted it."""


class MalformedDatasetError(ValueError):
    """An attribute cannot be decoded (wrong length, bad sequence), so it cannot be de-identified."""


_DECODE_ERRORS = (BytesLengthException, ValueError, NotImplementedError, struct.error, EOFError,
                  KeyError, OverflowError)


def _decode_all(ds: Dataset, path: str = "") -> None:
    """Decode every raw element up front (pydicom decodes lazily) so a malformed one is found.

    Undecodable elements that are removed anyway (private, overlay, curve, command, file
    meta and directory elements, tags no dictionary knows) are dropped; any other
    undecodable element raises :class:`MalformedDatasetError`. A standard element stored
    as UN stays UN here (pydicom would re-type it unchecked): the profile decodes it as the
    dictionary VR only if its bytes are valid for that VR.
    """
    for tag in list(ds.keys()):
        t = int(tag)
        here = f"{path}/{_tag_str(t)}" if path else _tag_str(t)
        raw = ds.get_item(tag)
        if (isinstance(raw, RawDataElement) and raw.VR == "UN" and not (t >> 16) & 1
                and "SQ" not in rules.dictionary_vrs(t)):
            kept = DataElement(tag, "OB", bytes(raw.value or b""))
            kept.VR = "UN"  # set after: the constructor would look the VR up unchecked
            ds[tag] = kept
            continue
        try:
            elem = ds[tag]
        except _DECODE_ERRORS as exc:
            if ((t >> 16) & 1 or (t >> 16) & 0xFF00 in (0x5000, 0x6000)
                    or rules.outside_instance(t) or not rules.dictionary_vrs(t)):
                del ds[tag]
                continue
            raise MalformedDatasetError(
                f"malformed: attribute {here} cannot be decoded ({exc})"[:300]
            ) from exc
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                _decode_all(item, f"{here}[{i}]")


def burned_in_reason(ds: Dataset) -> str | None:
    """Why ``ds`` may have text burned into its pixels, or None when it should not."""
    bia = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if bia and bia != "NO":
        return f"BurnedInAnnotation is {bia!r}"
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in BURNED_IN_MODALITIES:
        return f"modality {modality} commonly has patient details burned into the pixels"
    if str(ds.get("SOPClassUID", "")).startswith(_SC_CLASS_PREFIX):
        return "Secondary Capture images commonly have text burned into the pixels"
    return None


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _creator(ds: Dataset, group: int, elem: int) -> str:
    """The Private Creator reserving the block of private element ``(group, elem)``."""
    block = elem >> 8
    if not 0x10 <= block <= 0xFF:
        return ""
    creator = ds.get((group, block))
    if creator is None or creator.VR == "SQ":
        return ""
    value = creator.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "")


@dataclass
class _Patient:
    name: str
    pid: str
    offset_days: int
    tokens: tuple[str, ...]


def _identity_tokens(ds: Dataset) -> tuple[str, ...]:
    """Identifying strings of a dataset's patient/study, for cleaning free text."""
    keys = ("PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames",
            "PatientBirthDate", "PatientAddress", "AccessionNumber", "ReferringPhysicianName",
            "PatientMotherBirthName", "InstitutionName", "InstitutionAddress",
            "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord", "StationName",
            "PatientTelephoneNumbers", "MilitaryRank", "IssuerOfPatientID")
    out: set[str] = set()
    for key in keys:
        value = ds.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
        for v in values:
            for part in re.split(r"[\^=\s,]+", str(v)):
                if len(part) >= 3:
                    out.add(part)
    return tuple(sorted(out, key=len, reverse=True))


def _shift_date(value: str, days: int) -> str | None:
    try:
        d = dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None
    return (d + dt.timedelta(days=days)).strftime("%Y%m%d") + value[8:]


class Anonymizer:
    """De-identifies datasets for one export job.

    Holds the job's state: a secret that makes UID remapping consistent within the job
    (and unlinkable across jobs), the UID map, and one pseudonym and date offset per
    patient.

    Args:
        options: what to keep.
        secret: job secret (random when None; pass one to reproduce a mapping in tests).
    """

    def __init__(self, options: AnonymizeOptions, *, secret: bytes | None = None) -> None:
        self.options = options
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._enabled = options.enabled()
        self.uid_map: dict[str, str] = {}
        self._patients: dict[tuple[str, str, str], _Patient] = {}

    # -- job state ---------------------------------------------------------------------
    def _digest(self, *parts: str) -> str:
        msg = "\x00".join(parts).encode("utf-8")
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def map_uid(self, old: str) -> str:
        """The job's replacement for a UID (well-formed well-known DICOM UIDs are kept)."""
        old = str(old).strip().rstrip("\x00")
        if not old or (rules.valid_uid(old) and (old in UID_dictionary
                                                 or old.startswith("1.2.840.10008."))):
            return old
        new = self.uid_map.get(old)
        if new is None:
            new = str(generate_uid(prefix=None, entropy_srcs=[self._secret.hex(), old]))
            self.uid_map[old] = new
        return new

    def _patient(self, ds: Dataset) -> _Patient:
        key = (str(ds.get("PatientID", "")), str(ds.get("PatientName", "")),
               str(ds.get("PatientBirthDate", "")))
        p = self._patients.get(key)
        if p is not None:
            return p
        n = len(self._patients)
        o = self.options
        gen = "ANON-" + self._digest("patient", *key)[:10].upper()
        suffix = f"-{n + 1}" if n else ""
        name = (o.pseudonym_name + suffix) if o.pseudonym_name else gen
        pid = (o.pseudonym_id + suffix) if o.pseudonym_id else gen
        if o.date_offset_days is not None:
            offset = o.date_offset_days
        else:  # one offset per patient, between 1 and 10 years back
            offset = -(366 + int(self._digest("offset", *key)[:8], 16) % 3285)
        p = _Patient(name=name, pid=pid, offset_days=offset, tokens=_identity_tokens(ds))
        self._patients[key] = p
        return p

    # -- per dataset -------------------------------------------------------------------
    def anonymize_dataset(self, ds: Dataset) -> tuple[Dataset, list[ActionRecord]]:
        """A de-identified copy of ``ds`` (the input is never modified) and what was done.

        The copy has a zeroed preamble and a file meta group made from nothing.

        Raises:
            BurnedInAnnotationError: ``ds`` may show identity in its pixels and
                ``options.accept_burned_in`` is False.
            MalformedDatasetError: an attribute cannot be decoded (wrong length, ...), or
                the transfer syntax is not a standard one.
        """
        ts = rules.transfer_syntax(ds)
        if ts is None:
            raise MalformedDatasetError("malformed: the transfer syntax is not a standard one")
        out = copy.deepcopy(ds)
        _decode_all(out)  # before any attribute is read: malformed ones raise clearly
        reason = burned_in_reason(out)
        if reason and not self.options.accept_burned_in:
            raise BurnedInAnnotationError(
                f"refusing to export an image that may show patient details in its pixels "
                f"({reason}); the anonymiser cannot remove burned-in text. Accept the risk "
                "explicitly (--accept-burned-in / the checkbox) only after checking the images."
            )
        patient = self._patient(out)
        enhanced = "SharedFunctionalGroupsSequence" in out or "PerFrameFunctionalGroupsSequence" in out
        records: list[ActionRecord] = []
        self._process(out, "", records, patient, enhanced, scrub=False)
        self._mark(out, records, patient)
        out.file_meta = rules.build_file_meta(out, ts)
        out.preamble = b"\x00" * 128  # the source's preamble can hold anything
        return out, records

    def _process(self, ds: Dataset, path: str, records: list[ActionRecord], patient: _Patient,
                 enhanced: bool, *, scrub: bool) -> None:
        private_keep: set[int] = set()  # private creator tags still needed
        for tag in list(ds.keys()):
            elem = ds[tag]
            t = int(tag)
            group, el = t >> 16, t & 0xFFFF
            here = f"{path}/{_tag_str(t)}" if path else _tag_str(t)
            if rules.outside_instance(t):  # file meta in the body, group lengths, ...
                del ds[tag]
                if el:
                    records.append(ActionRecord(here, _tag_str(t), elem.keyword or "unknown",
                                                "X", "not-in-instance"))
                continue
            if group & 1:
                if 0x0010 <= el <= 0x00FF:
                    continue  # private creators: decided after the block's elements
                safe = (profile.safe_private_rule(_creator(ds, group, el), group, el)
                        if self.options.retain_safe_private else None)
                if safe is None:
                    del ds[tag]
                    records.append(ActionRecord(here, _tag_str(t), "private", "X", "private"))
                elif self._keep_safe_private(ds, t, safe, here, records, patient, enhanced):
                    private_keep.add((group << 16) | (el >> 8))
                else:
                    del ds[tag]
                    records.append(ActionRecord(here, _tag_str(t), "private", "X",
                                                "safe-private-mismatch"))
                continue
            if group & 0xFF00 == 0x6000:  # the whole overlay goes, not only its data
                del ds[tag]
                records.append(ActionRecord(here, _tag_str(t), elem.keyword or "overlay", "X",
                                            "overlay"))
                continue
            vrs = rules.dictionary_vrs(t)
            if elem.VR == "UN" and vrs and "UN" not in vrs:  # decode as the dictionary VR
                typed = rules.retype_un(elem, vrs)
                if typed is not None:
                    ds[tag] = elem = typed
            kw = elem.keyword or "unknown"
            rule = profile.lookup(t)
            label = ""
            if rule is None and t in rules.SUPPLEMENT:
                rule, label = rules.SUPPLEMENT[t], "product:"
            if (elem.VR == "UN" and "UN" not in vrs) or (rule is None and not vrs):
                del ds[tag]  # still UN, or a tag neither the table nor a dictionary knows
                records.append(ActionRecord(here, _tag_str(t), kw, "X",
                                            "un" if elem.VR == "UN" else "unknown"))
                continue
            if rule is not None:
                code = profile.resolve(rule, self._enabled)
                action = profile.choose_combined(code, t, enhanced)
                self._apply(ds, elem, action, here, records, patient, enhanced,
                            rule=label + code)
                continue
            if kw.endswith(("Comments", "Comment")):
                del ds[tag]
                records.append(ActionRecord(here, _tag_str(t), kw, "X", "comment"))
            elif elem.VR == "SQ":
                self._recurse(elem, here, records, patient, enhanced, scrub=scrub)
            elif elem.VR == "UI":
                keep = kw.endswith(_KEEP_UID_KEYWORD_SUFFIXES) and all(
                    rules.valid_uid(v) for v in (elem.value if elem.VM > 1 else [elem.value]))
                if not keep and self._remap(elem):
                    records.append(ActionRecord(here, _tag_str(t), kw, "U", "uid"))
            else:
                decided = rules.beyond_table_action(t, elem.VR, vrs, in_dummy_sequence=scrub)
                if decided is None:
                    continue
                action, why = decided
                if action != "C":
                    self._apply(ds, elem, action, here, records, patient, enhanced, rule=why)
                elif self._clean_text(elem, patient):  # allow list: kept, cleaned
                    records.append(ActionRecord(here, _tag_str(t), kw, "C", why))
        for t in list(ds.keys()):
            ti = int(t)
            if ti >> 16 & 1 and 0x0010 <= ti & 0xFFFF <= 0x00FF and ti not in private_keep:
                del ds[t]

    def _keep_safe_private(self, ds: Dataset, tag: int, safe: profile.SafePrivate, path: str,
                           records: list[ActionRecord], patient: _Patient,
                           enhanced: bool) -> bool:
        """Keep a private element listed in Table E.3.10-1 if it is what the table describes.

        The table's VR and VM are conditions: an element whose VR is not the listed one
        (or whose value multiplicity does not fit) is probably another attribute reusing the
        creator and offset, so it is not kept (returns False; the caller removes it). A UN
        element (implicit VR, or a writer that did not know the attribute) is decoded as the
        listed VR and kept only if that decoding is valid; a UN sequence cannot be checked
        and is not kept. Rows without a VR (five Siemens ultrasound rows) have no VR
        condition. A kept sequence's items are de-identified like any other dataset (standard
        attributes by Table E.1-1, private ones by this table), and kept UIDs are remapped
        like every other UID of the job, so they cannot link back to the source.
        """
        elem = ds[tag]
        vrs = safe.vrs
        if elem.VR == "UN" and vrs:
            typed = rules.retype_un(elem, vrs)
            if typed is None:
                return False
            ds[tag] = elem = typed
        elif vrs and elem.VR not in vrs:
            return False
        if elem.VR != "SQ" and not (safe.vm_allows(elem.VM) and rules.valid_value(elem)):
            return False
        name = f"private:{safe.creator}:{safe.meaning}"[:64]
        if elem.VR == "SQ":
            self._recurse(elem, path, records, patient, enhanced, scrub=False)
        elif elem.VR == "UI":
            self._remap(elem)
            records.append(ActionRecord(path, _tag_str(tag), name, "U", "safe-private"))
            return True
        records.append(ActionRecord(path, _tag_str(tag), name, "K", "safe-private"))
        return True

    def _recurse(self, elem: DataElement, path: str, records: list[ActionRecord],
                 patient: _Patient, enhanced: bool, *, scrub: bool) -> None:
        for i, item in enumerate(elem.value or []):
            self._process(item, f"{path}[{i}]", records, patient, enhanced, scrub=scrub)

    def _apply(self, ds: Dataset, elem: DataElement, action: str, path: str,
               records: list[ActionRecord], patient: _Patient, enhanced: bool, *,
               rule: str) -> None:
        kw = elem.keyword or "unknown"
        rec = ActionRecord(path, _tag_str(int(elem.tag)), kw, action, rule)
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            elem.value = Sequence([]) if elem.VR == "SQ" else None
        elif action == "D":
            if elem.VR == "SQ":  # keep the structure, dummy/clean its contents
                self._recurse(elem, path, records, patient, enhanced, scrub=True)
            else:
                elem.value = self._dummy(elem)
        elif action == "K":
            if elem.VR == "SQ":
                self._recurse(elem, path, records, patient, enhanced, scrub=False)
        elif action == "C":
            if elem.VR == "SQ":
                self._recurse(elem, path, records, patient, enhanced, scrub=True)
            elif elem.VR in ("DA", "DT", "TM"):
                self._shift(elem, patient)
            else:
                self._clean_text(elem, patient)
        elif action == "U":
            if elem.VR == "SQ":
                self._recurse(elem, path, records, patient, enhanced, scrub=False)
            else:
                self._remap(elem)
        else:  # pragma: no cover - the table has no other codes
            raise ValueError(f"unknown action {action!r} for {kw}")
        records.append(rec)

    def _remap(self, elem: DataElement) -> bool:
        if elem.value in (None, ""):
            return False
        if elem.VM > 1:
            elem.value = [self.map_uid(v) for v in elem.value]
        else:
            elem.value = self.map_uid(str(elem.value))
        return True

    def _dummy(self, elem: DataElement) -> Any:
        vr = elem.VR
        if vr == "PN":
            return "ANONYMOUS"
        if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"):
            return _DUMMY_TEXT
        if vr == "DA":
            return "19000101"
        if vr == "TM":
            return "000000"
        if vr == "DT":
            return "19000101000000"
        if vr in ("DS", "IS"):
            return "0"
        if vr == "AS":
            return "000Y"
        if vr == "UI":
            return self.map_uid(str(elem.value)) if elem.value else str(generate_uid())
        if vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"):
            return 0
        if vr == "AT":
            return 0
        if vr == "UR":
            return "http://anonymized.invalid"
        return b"\x00\x00"  # OB, OW, UN, ...

    def _shift(self, elem: DataElement, patient: _Patient) -> None:
        if elem.VR == "TM" or elem.value in (None, "") or self.options.full_dates:
            return  # whole-day offsets keep times (and date/time pairs) consistent
        values = list(elem.value) if elem.VM > 1 else [elem.value]
        shifted = [_shift_date(str(v), patient.offset_days) for v in values]
        if any(s is None for s in shifted):
            elem.value = "19000101" if elem.VR == "DA" else "19000101000000"
        else:
            elem.value = shifted if len(shifted) > 1 else shifted[0]

    def _clean_text(self, elem: DataElement, patient: _Patient) -> bool:
        if elem.value in (None, ""):
            return False
        if elem.VR not in _TEXT_VRS:
            return False
        text = str(elem.value)
        cleaned = text
        for tok in patient.tokens:
            cleaned = re.sub(re.escape(tok), "", cleaned, flags=re.IGNORECASE)
        if cleaned == text:
            return False
        elem.value = "ANONYMOUS" if elem.VR == "PN" else cleaned.strip(" ^,") or _DUMMY_TEXT
        return True

    def _mark(self, ds: Dataset, records: list[ActionRecord], patient: _Patient) -> None:
        o = self.options
        for kw in ("PatientName", "PatientID"):
            if kw in ds:  # re-create with the dictionary VR (a file may carry UN/OB here)
                del ds[kw]
        ds.PatientName = patient.name
        ds.PatientID = patient.pid
        for kw, tag in (("PatientName", 0x00100010), ("PatientID", 0x00100020)):
            records.append(ActionRecord(_tag_str(tag), _tag_str(tag), kw, "D", "pseudonym"))
        ds.PatientIdentityRemoved = "YES"
        methods = [f"DICOM PS3.15 E.1 Basic Profile {profile.EDITION}"]
        codes = [profile.BASIC_PROFILE_CODE]
        for opt in self._enabled:
            codes.append(OPTION_CODES[opt])
            method = OPTION_CODES[opt][1].replace(" Option", "")
            if opt is Option.SAFE_PRIVATE:  # the safe list is pinned to its own edition
                method += f" (Table E.3.10-1 {profile.SAFE_PRIVATE_EDITION})"
            methods.append(method[:64])
        methods.append(f"medgan_desktop {__version__}")
        ds.DeidentificationMethod = methods
        seq = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            seq.append(item)
        ds.DeidentificationMethodCodeSequence = seq
        if not o.retain_longitudinal:
            ltim = "REMOVED"
        else:
            ltim = "UNMODIFIED" if o.full_dates else "MODIFIED"
        ds.LongitudinalTemporalInformationModified = ltim
        for kw in ("PatientIdentityRemoved", "DeidentificationMethod",
                   "DeidentificationMethodCodeSequence",
                   "LongitudinalTemporalInformationModified"):
            tag = int(ds.data_element(kw).tag)  # type: ignore[union-attr]
            records.append(ActionRecord(_tag_str(tag), _tag_str(tag), kw, "D", "marker"))

    # -- folders -----------------------------------------------------------------------
    def anonymize_folder(self, in_dir: Path, out_dir: Path, *,
                         progress: ProgressCallback = no_progress,
                         cancel: CancelToken | None = None) -> AnonymizeReport:
        """De-identify every DICOM file under ``in_dir`` into ``out_dir``.

        Output layout: ``out_dir/S001/SE001/IM00001.dcm`` (no source names, which can
        hold identity). A file that is not DICOM, cannot be read or de-identified, or does
        not make a complete instance is skipped with a one-line reason while the others
        are written (the report then says ``written with problems``); DICOMDIRs are
        ignored. The folder appears only once complete: a failed write leaves nothing.

        Raises:
            ValueError: ``out_dir`` is ``in_dir`` or inside it.
            FileExistsError: ``out_dir`` exists and is not empty.
            BurnedInAnnotationError: some images may show identity in their pixels and
                ``accept_burned_in`` is off (checked before anything is written).
            WriteError: writing failed (disk full, read-only); nothing was left behind.
            Cancelled: ``cancel`` was set; nothing was left behind.
        """
        src = Path(in_dir).expanduser().resolve()
        if not src.is_dir():
            raise FileNotFoundError(f"the source folder {src} does not exist")
        files = sorted(p for p in src.rglob("*") if p.is_file())
        return self.anonymize_files(files, out_dir, base=src, progress=progress, cancel=cancel)

    def anonymize_files(self, files: Seq[Path], out_dir: Path, *, base: Path | None = None,
                        source_names: Mapping[Path, str] | None = None,
                        progress: ProgressCallback = no_progress,
                        cancel: CancelToken | None = None) -> AnonymizeReport:
        """De-identify the given files into ``out_dir`` (see :meth:`anonymize_folder`).

        All files go through this one job: UIDs, pseudonyms and date offsets are consistent
        across them (a whole study exported from several folders still cross-references).

        Args:
            files: source files (those that cannot be exported are skipped and reported).
            out_dir: the folder to create; never inside a source file's folder.
            base: folder the report's source paths are relative to (file names otherwise).
            source_names: the name the report gives a source file (keyed by the paths as
                given), e.g. ``"series 2/IM0001.dcm"`` when file names repeat across
                folders; overrides ``base`` for the files it names.
            progress: called after each file.
            cancel: checked before each file.

        Returns:
            The report (its ``status`` says whether every file was written).

        Raises:
            See :meth:`anonymize_folder`.
        """
        paths = [Path(f).expanduser().resolve() for f in files]
        src_dirs = tuple(sorted({p.parent for p in paths} | ({base} if base else set())))
        out = check_output_dir(Path(out_dir), source_dirs=src_dirs)
        report = AnonymizeReport(edition=profile.EDITION, options=asdict(self.options))

        names = {Path(k).expanduser().resolve(): v for k, v in (source_names or {}).items()}

        def relname(p: Path) -> str:
            if p in names:
                return names[p]
            return str(p.relative_to(base)) if base is not None else p.name

        candidates: list[Path] = []
        for p in paths:
            rel = relname(p)
            try:
                head = pydicom.dcmread(p, stop_before_pixels=True)
                meta = getattr(head, "file_meta", None)
                dicomdir = ("DirectoryRecordSequence" in head or str(
                    getattr(meta, "MediaStorageSOPClassUID", "")) == _DICOMDIR_CLASS)
                reason = None if dicomdir else burned_in_reason(head)
            except Cancelled:
                raise
            except Exception as exc:  # any unreadable source is reported, never fatal
                report.files.append(FileResult(rel, None, "skipped", _skip_reason(exc)))
                continue
            if dicomdir:
                report.files.append(FileResult(rel, None, "ignored",
                                               "a DICOMDIR (media index): not exported"))
                continue
            if reason and not self.options.accept_burned_in:
                report.refused.append(f"{rel}: {reason}")
            candidates.append(p)
        if report.refused:
            listing = "; ".join(report.refused[:3])
            more = f" (and {len(report.refused) - 3} more)" if len(report.refused) > 3 else ""
            raise BurnedInAnnotationError(
                f"{len(report.refused)} image(s) may show patient details burned into the "
                f"pixels, which the anonymiser cannot remove: {listing}{more}. Nothing was "
                "exported. Check the images and accept the risk explicitly to export them."
            )
        layout = OutputLayout()
        total = len(candidates)
        with atomic_output_dir(out, source_dirs=src_dirs) as tmp:
            for n, p in enumerate(candidates):
                if cancel is not None:
                    cancel.check()
                rel = relname(p)
                try:
                    anon, records = self._export_one(p)
                except Cancelled:
                    raise
                except Exception as exc:  # unreadable, corrupt or incomplete: skip it
                    report.files.append(FileResult(rel, None, "skipped", _skip_reason(exc)))
                else:
                    out_rel = layout.place(anon)
                    if save_instance(anon, tmp, out_rel, rel, report):
                        layout.commit(anon)
                        report.files.append(FileResult(rel, out_rel, "written", ""))
                        report.actions.extend((out_rel, r) for r in records)
                progress(Progress(n + 1, total, f"anonymised {n + 1}/{total}"))
        report.out_dir = str(out)
        return report

    def _export_one(self, path: Path) -> tuple[Dataset, list[ActionRecord]]:
        """Read, de-identify and check one source file (any failure raises)."""
        anon, records = self.anonymize_dataset(pydicom.dcmread(path))
        problem = rules.instance_problem(anon)
        if problem is not None:
            raise _IncompleteInstance(f"not a complete instance: {problem}")
        return anon, records


class _IncompleteInstance(ValueError):
    """A de-identified source that is not a usable instance (no UIDs, missing pixels)."""


def _skip_reason(exc: Exception) -> str:
    """The one-line reason a source file was skipped."""
    if isinstance(exc, MalformedDatasetError | _IncompleteInstance):
        text = str(exc)
    elif isinstance(exc, InvalidDicomError):
        text = f"not DICOM: {exc}"
    elif isinstance(exc, OSError):
        text = f"could not be read: {exc.strerror or exc}"
    else:
        text = f"unreadable or corrupt DICOM ({type(exc).__name__}: {exc})"
    return " ".join(text.split())[:200]


def anonymize_folder(in_dir: Path, out_dir: Path, options: AnonymizeOptions, *,
                     progress: ProgressCallback = no_progress,
                     cancel: CancelToken | None = None,
                     anonymizer: Anonymizer | None = None) -> AnonymizeReport:
    """De-identify a folder of DICOM files with a fresh job (see :meth:`Anonymizer.anonymize_folder`)."""
    job = anonymizer if anonymizer is not None else Anonymizer(options)
    return job.anonymize_folder(in_dir, out_dir, progress=progress, cancel=cancel)


