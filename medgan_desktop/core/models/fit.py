"""Does a translation model fit this series? What each model was trained on, checked.

Every translation model declares what it was trained on (:class:`Applicability`: the
modality, for MR the weighting, the body part, the in-plane field of view and spacing, the
orientation, whether it needs real patient geometry). It comes from the manifest entry of
a catalogue model (``"applicability"``) or, for a local run, from what the training job
recorded in ``run.json`` (``data.applicability``).

A series is described by :class:`SeriesTraits`, read from the volume and its DICOM header
(BodyPartExamined, SeriesDescription/ProtocolName/sequence names, echo and repetition
times, field of view, spacing, orientation). :func:`assess` compares the two and says, in
words, what matches, what differs and what could not be told; :func:`best_fit` ranks
candidate models for a series. A mismatch is refused by ``medgan translate`` (exit code 2)
unless ``--force``, and shown in the Translate panel's warning bar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgan_desktop.core.types import FloatArray, JsonObject
from medgan_desktop.core.volume import Volume

#: Body parts (DICOM BodyPartExamined defined terms and common words) by region.
_REGIONS: dict[str, tuple[str, ...]] = {
    "HEAD": ("HEAD", "BRAIN", "SKULL", "CRANIUM", "NEURO", "HEADNECK"),
    "NECK": ("NECK", "CSPINE", "THROAT"),
    "CHEST": ("CHEST", "THORAX", "LUNG", "HEART", "BREAST"),
    "ABDOMEN": ("ABDOMEN", "LIVER", "KIDNEY", "PANCREAS", "ABDOMENPELVIS"),
    "PELVIS": ("PELVIS", "PROSTATE", "HIP", "BLADDER"),
    "PHANTOM": ("PHANTOM", "QA", "TEST"),
}


def region_of(text: str) -> str:
    """The body region a BodyPartExamined value or description names ("" if none)."""
    up = re.sub(r"[^A-Z]", "", text.upper())
    for region, words in _REGIONS.items():
        if any(w in up for w in words):
            return region
    return ""


def weighting_of(text: str, echo_ms: float | None = None, rep_ms: float | None = None,
                 inv_ms: float | None = None) -> str:
    """The MR weighting (T1, T2, FLAIR, PD) from names, else from the timing ("" if unknown).

    Names win (a series description "T2 TSE"); the timing rule is the textbook one:
    a long inversion time is FLAIR, short TR and TE T1, long TR and TE T2, long TR with a
    short TE proton density.
    """
    up = text.upper()

    def word(pattern: str) -> bool:
        return re.search(r"(^|[^A-Z0-9])(" + pattern + r")([^A-Z0-9]|$)", up) is not None

    if "FLAIR" in up:
        return "FLAIR"
    if word("T1|T1W|MPRAGE|SPGR|FSPGR|TFL|VIBE|T1C"):
        return "T1"
    if word("T2|T2W|TSE|FSE|HASTE|SPACE|CISS"):
        return "T2"
    if word("PD|PDW"):
        return "PD"
    t1 = re.search(r"(?<![0-9])T1(?![0-9])", up) is not None
    t2 = re.search(r"(?<![0-9])T2(?![0-9])", up) is not None
    if t1 != t2:
        return "T1" if t1 else "T2"
    if inv_ms is not None and inv_ms > 1500:
        return "FLAIR"
    if rep_ms is not None and echo_ms is not None:
        if rep_ms < 1000 and echo_ms < 30:
            return "T1"
        if rep_ms > 1800 and echo_ms > 70:
            return "T2"
        if rep_ms > 1800 and echo_ms < 30:
            return "PD"
    return ""


def orientation_of(direction: FloatArray) -> str:
    """"axial", "coronal" or "sagittal": the patient axis closest to the slice normal."""
    d = np.asarray(direction, dtype=np.float64)
    normal = d[:, 2]
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(normal)))]


@dataclass(frozen=True)
class Applicability:
    """What a translation model was trained on.

    Args:
        modality: the input modality ("MR").
        weightings: MR weightings it was trained on (empty: any / not recorded).
        regions: body regions ("HEAD", "PHANTOM", ...; empty: not recorded).
        fov_mm: range of in-plane fields of view (the larger side) it saw, in mm.
        spacing_mm: range of in-plane pixel spacings, in mm.
        orientation: the slice orientation it was trained on ("axial"; "" any).
        needs_geometry: trained on volumes with patient geometry (False for 2D images).
        subject: "human" or "phantom" ("" not recorded).
    """

    modality: str = ""
    weightings: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    fov_mm: tuple[float, float] | None = None
    spacing_mm: tuple[float, float] | None = None
    orientation: str = ""
    needs_geometry: bool = True
    subject: str = ""

    def to_dict(self) -> JsonObject:
        return {
            "modality": self.modality,
            "weightings": list(self.weightings),
            "regions": list(self.regions),
            "fov_mm": None if self.fov_mm is None else list(self.fov_mm),
            "spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "orientation": self.orientation,
            "needs_geometry": self.needs_geometry,
            "subject": self.subject,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Applicability:
        def pair(v: Any) -> tuple[float, float] | None:
            return None if not v else (float(v[0]), float(v[1]))

        return cls(
            modality=str(d.get("modality") or "").upper(),
            weightings=tuple(str(w).upper() for w in d.get("weightings") or ()),
            regions=tuple(str(r).upper() for r in d.get("regions") or ()),
            fov_mm=pair(d.get("fov_mm")),
            spacing_mm=pair(d.get("spacing_mm")),
            orientation=str(d.get("orientation") or ""),
            needs_geometry=bool(d.get("needs_geometry", True)),
            subject=str(d.get("subject") or ""),
        )

    def describe(self) -> str:
        """``"HEAD T1 MR, axial, FOV 180-260 mm"``."""
        fov = "" if self.fov_mm is None else f"FOV {self.fov_mm[0]:.0f}-{self.fov_mm[1]:.0f} mm"
        return _described(("/".join(self.regions), "/".join(self.weightings), self.modality),
                          self.orientation, fov, "" if self.needs_geometry else "2D images",
                          "unrecorded data")


def _described(kind: Iterable[str], orientation: str, fov: str, flat: str, nothing: str) -> str:
    """``"HEAD T1 MR, axial, FOV 180 mm"``: what was imaged, the orientation, the field of view
    and a note on images without geometry, those that are known; ``nothing`` if none is."""
    parts = (" ".join(x for x in kind if x), orientation, fov, flat)
    return ", ".join(p for p in parts if p) or nothing


@dataclass(frozen=True)
class SeriesTraits:
    """What a series is, as far as its image and header tell."""

    modality: str
    weighting: str = ""
    region: str = ""
    fov_mm: float | None = None
    spacing_mm: float | None = None
    orientation: str = ""
    geometry_known: bool = True
    description: str = ""

    @classmethod
    def of(cls, volume: Volume) -> SeriesTraits:
        src = volume.source
        names = " ".join(x for x in (src.series_description, src.protocol_name, src.sequence,
                                     volume.description) if x)
        region = region_of(src.body_part) or region_of(names) or region_of(src.study_description)
        _, nj, ni = volume.shape
        known = volume.geometry_known
        fov = max(nj * float(volume.spacing[1]), ni * float(volume.spacing[0])) if known else None
        spacing = float(min(volume.spacing[0], volume.spacing[1])) if known else None
        mod = (volume.modality or "").upper()
        return cls(
            modality=mod,
            weighting=weighting_of(names, src.echo_time, src.repetition_time, src.inversion_time)
            if mod == "MR" else "",
            region=region,
            fov_mm=fov,
            spacing_mm=spacing,
            orientation=orientation_of(volume.direction) if known else "",
            geometry_known=known,
            description=names,
        )

    def describe(self) -> str:
        fov = "" if self.fov_mm is None else f"FOV {self.fov_mm:.0f} mm"
        return _described((self.region, self.weighting, self.modality), self.orientation, fov,
                          "" if self.geometry_known else "2D images without patient geometry",
                          "an undescribed series")


@dataclass(frozen=True)
class Fit:
    """How well a model fits a series.

    Args:
        model: the model's id or run folder name.
        mismatches: what differs, one phrase each ("it was trained on T1 MR, the series is T2").
        matches: what was checked and agrees.
        unknown: what could not be checked (the series or the model does not say).
        score: higher is better (mismatches weigh most, then matches).
    """

    model: str
    applicability: Applicability
    traits: SeriesTraits
    mismatches: tuple[str, ...] = ()
    matches: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def score(self) -> float:
        return -10.0 * len(self.mismatches) + len(self.matches) - 0.1 * len(self.unknown)

    def sentence(self) -> str:
        """One sentence for the CLI and the warning bar."""
        if self.ok:
            checked = ", ".join(self.matches) or "nothing could be checked"
            return f"{display_name(self.model)} fits this series ({checked})."
        return (f"{display_name(self.model)} does not fit this series: " + "; ".join(self.mismatches)
                + f" (trained on {self.applicability.describe()}; the series is "
                f"{self.traits.describe()}).")


def assess(model: str, app: Applicability, traits: SeriesTraits) -> Fit:
    """Compare what ``model`` was trained on with a series (see the module docs)."""
    bad: list[str] = []
    good: list[str] = []
    unknown: list[str] = []
    if app.modality and traits.modality not in ("", "OT"):
        if traits.modality != app.modality:
            bad.append(f"it translates {app.modality}, the series is {traits.modality}")
        else:
            good.append(app.modality)
    elif app.modality:
        unknown.append("modality")

    def one_of(trained: tuple[str, ...], value: str, what: str, mismatch: str, match: str) -> None:
        if not trained:
            return
        if not value:
            unknown.append(what)
        elif value not in trained:
            bad.append(mismatch)
        else:
            good.append(match)

    one_of(app.weightings, traits.weighting, "MR weighting",
           f"it was trained on {'/'.join(app.weightings)} MR, the series is {traits.weighting}", traits.weighting)
    one_of(app.regions, traits.region, "body part",
           f"it was trained on {'/'.join(app.regions).lower()}, the series shows {traits.region.lower()}",
           traits.region.lower())
    if app.needs_geometry and not traits.geometry_known:
        bad.append("it needs a series with patient geometry, these are 2D images without it")
    if app.fov_mm is not None and traits.fov_mm is not None:
        lo, hi = app.fov_mm
        if traits.fov_mm < 0.5 * lo or traits.fov_mm > 2.0 * hi:
            bad.append(f"its field of view was {lo:.0f}-{hi:.0f} mm, the series has "
                       f"{traits.fov_mm:.0f} mm")
        else:
            good.append("field of view")
    if app.orientation and traits.orientation:
        if traits.orientation != app.orientation:
            bad.append(f"it was trained on {app.orientation} slices, the series is "
                       f"{traits.orientation}")
        else:
            good.append(traits.orientation)
    return Fit(model, app, traits, tuple(bad), tuple(good), tuple(unknown))


def display_name(ref: str) -> str:
    """A model reference as a user reads it: ``model:ID`` as the id, a run by its folder."""
    if ref.startswith("model:"):
        return ref[len("model:"):]
    if ref.startswith("run:"):
        return f"run {ref[len('run:'):].rstrip('/').rsplit('/', 1)[-1]}"
    return ref


@dataclass(frozen=True)
class Ranked:
    """Candidate models for a series, best first."""

    fits: tuple[Fit, ...] = field(default_factory=tuple)

    @property
    def best(self) -> Fit | None:
        return self.fits[0] if self.fits else None

    def why(self) -> str:
        """Why the best was chosen, in a sentence."""
        best = self.best
        if best is None:
            return "no translation model is available"
        others = [display_name(f.model) for f in self.fits[1:] if not f.ok]
        tail = f"; not {', '.join(others)} (they do not fit)" if others else ""
        return f"{display_name(best.model)} is the best fit for {best.traits.describe()}{tail}."


def best_fit(candidates: Iterable[tuple[str, Applicability]], traits: SeriesTraits) -> Ranked:
    """Rank ``(model, applicability)`` candidates for a series (stable for ties)."""
    fits = [assess(m, a, traits) for m, a in candidates]
    order = sorted(range(len(fits)), key=lambda i: (-fits[i].score, i))
    return Ranked(tuple(fits[i] for i in order))


def applicability_of_training(volumes: Sequence[Volume], *, subject: str = "") -> Applicability:
    """What a model trained on ``volumes`` (the MR sources) may be applied to.

    Recorded by the translation training job in ``run.json`` so that local runs are
    checked like shipped models.
    """
    traits = [SeriesTraits.of(v) for v in volumes]
    fovs = [t.fov_mm for t in traits if t.fov_mm is not None]
    spacings = [t.spacing_mm for t in traits if t.spacing_mm is not None]
    mods = sorted({t.modality for t in traits if t.modality not in ("", "OT")})
    return Applicability(
        modality=mods[0] if len(mods) == 1 else "",
        weightings=tuple(sorted({t.weighting for t in traits if t.weighting})),
        regions=tuple(sorted({t.region for t in traits if t.region})),
        fov_mm=(min(fovs), max(fovs)) if fovs else None,
        spacing_mm=(min(spacings), max(spacings)) if spacings else None,
        orientation=traits[0].orientation if len({t.orientation for t in traits}) == 1 else "",
        needs_geometry=all(t.geometry_known for t in traits),
        subject=subject,
    )
