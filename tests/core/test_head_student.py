"""The shipped head student translates the sample study's MR like its teacher (HU distribution)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medgan_desktop.core.inference.translate import translate
from medgan_desktop.core.models.registry import resolve_model
from medgan_desktop.core.models.runs import load_model


def _head_mask(v: np.ndarray, thr: float) -> np.ndarray:
    h = ndimage.binary_closing(v > thr, iterations=3)
    return np.stack([ndimage.binary_fill_holes(s) for s in h])


@pytest.fixture(scope="module")
def sample_mr():  # type: ignore[no-untyped-def]
    from medgan_desktop.core.jobs.sample_study import load_colin27_mr

    return load_colin27_mr()


def test_head_student_matches_its_teacher_distribution(sample_mr) -> None:  # type: ignore[no-untyped-def]
    student = load_model(resolve_model("head_mrct_student"))
    teacher = load_model(resolve_model("head_mrct_cyclegan"))
    assert student.info.method == "distilled"
    assert student.method.config.extra.get("teacher", "") == "models/head_mrct_cyclegan"
    s = translate(sample_mr, student)
    t = translate(sample_mr, teacher)
    assert s.array.shape == sample_mr.array.shape and s.synthetic
    m = np.asarray(sample_mr.array, np.float32)
    head = _head_mask(m, 0.1 * float(np.percentile(m, 99.5)))
    sa, ta = s.array[head], t.array[head]
    bone_s, bone_t = float((sa >= 300).mean()), float((ta >= 300).mean())
    assert 0.10 < bone_s < 0.22, bone_s  # the card: 15.2 % (teacher 17.4 %, real CT 17.9 %)
    assert abs(bone_s - bone_t) < 0.05
    assert abs(float(np.median(s.array[~head])) - float(np.median(t.array[~head]))) < 50  # air outside
    assert abs(float(sa.mean()) - float(ta.mean())) < 40  # card: mean difference +1.6 HU
