"""Self-contained HTML evaluation reports with embedded PNG figures.

Figures are drawn with Pillow (histograms, curves, image galleries) so the report
needs no plotting library and opens offline in any browser.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from medgan_desktop import __version__
from medgan_desktop.core.atomic import atomic_write_text, write_error
from medgan_desktop.core.metrics.evaluate import UnpairedResult
from medgan_desktop.core.metrics.paired import PairedReport
from medgan_desktop.core.metrics.utility import UtilityReport
from medgan_desktop.core.types import PixelArray

W, H, M = 560, 260, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def png_data_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _axes(title: str, x_range: tuple[float, float], y_range: tuple[float, float]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([M, 20, W - 10, H - M], outline="#444")
    d.text((M, 4), title, fill="black")
    d.text((M, H - M + 4), f"{x_range[0]:.3g}", fill="#333")
    d.text((W - 60, H - M + 4), f"{x_range[1]:.3g}", fill="#333")
    d.text((2, 20), f"{y_range[1]:.3g}", fill="#333")
    d.text((2, H - M - 10), f"{y_range[0]:.3g}", fill="#333")
    return img, d


def _xy(x: float, y: float, xr: tuple[float, float], yr: tuple[float, float]) -> tuple[float, float]:
    px = M + (x - xr[0]) / max(xr[1] - xr[0], 1e-12) * (W - 10 - M)
    py = H - M - (y - yr[0]) / max(yr[1] - yr[0], 1e-12) * (H - M - 20)
    return px, py


def histogram_png(series: dict[str, Sequence[float]], title: str, bins: int = 30,
                  markers: dict[str, float] | None = None) -> Image.Image:
    """Overlaid step histograms (normalised) with optional vertical marker lines."""
    vals = [np.asarray(v, float) for v in series.values() if len(v)]
    allv = np.concatenate(vals) if vals else np.zeros(1)
    lo, hi = float(allv.min()), float(allv.max())
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    hists = {k: np.histogram(np.asarray(v, float), edges, density=True)[0]
             for k, v in series.items() if len(v)}
    ymax = max((float(h.max()) for h in hists.values()), default=1.0) or 1.0
    img, d = _axes(title, (lo, hi), (0.0, ymax))
    for n, (name, h) in enumerate(hists.items()):
        col = COLOURS[n % len(COLOURS)]
        pts = []
        for i, v in enumerate(h):
            pts += [_xy(edges[i], v, (lo, hi), (0, ymax)), _xy(edges[i + 1], v, (lo, hi), (0, ymax))]
        d.line(pts, fill=col, width=2)
        d.text((W - 200, 24 + 12 * n), name, fill=col)
    for n, (name, x) in enumerate((markers or {}).items()):
        px, _ = _xy(x, 0, (lo, hi), (0, ymax))
        d.line([(px, 20), (px, H - M)], fill="#ff7f0e", width=1)
        d.text((px + 2, 24 + 12 * (len(hists) + n)), name, fill="#ff7f0e")
    return img


def curves_png(x: Sequence[float], curves: dict[str, Sequence[float]], title: str) -> Image.Image:
    """Line plot of several curves against ``x`` (NaN points skipped)."""
    xs = np.asarray(x, float)
    ys = [np.asarray(v, float) for v in curves.values()]
    finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.zeros(1)
    yr = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if yr[1] <= yr[0]:
        yr = (yr[0] - 1, yr[1] + 1)
    xr = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 1.0)
    if xr[1] <= xr[0]:
        xr = (xr[0] - 1, xr[1] + 1)
    img, d = _axes(title, xr, yr)
    for n, (name, y) in enumerate(curves.items()):
        col = COLOURS[n % len(COLOURS)]
        pts = [_xy(a, b, xr, yr) for a, b in zip(xs, np.asarray(y, float), strict=False)
               if math.isfinite(b)]
        if len(pts) > 1:
            d.line(pts, fill=col, width=2)
        d.text((W - 200, 24 + 12 * n), name, fill=col)
    return img


def to_grey_png(arr: PixelArray, lo: float | None = None, hi: float | None = None,
                size: int | None = None) -> Image.Image:
    a = np.asarray(arr, float)
    lo = float(np.nanmin(a)) if lo is None else lo
    hi = float(np.nanmax(a)) if hi is None else hi
    u8 = (np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(u8, mode="L")
    return img.resize((size, size), Image.Resampling.NEAREST) if size else img


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if not math.isfinite(v) else f"{v:.4g}"
        return html.escape(str(v))

    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>"
                               for k, v in rows) + "</table>"


_STYLE = """<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:3px 8px;
text-align:left}th{background:#f0f0f0}.pair{display:inline-block;margin:4px;text-align:center;
font-size:11px}.flag{border:3px solid #d62728}</style>"""


def _page(title: str, body: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title>{_STYLE}</head><body><h1>{html.escape(title)}</h1>"
            f"<p>medgan_desktop {__version__}, {stamp}. Research use only, not for diagnosis.</p>"
            f"{body}</body></html>")


def paired_html(rep: PairedReport, title: str = "Paired evaluation (SynthRAD metrics)") -> str:
    """HTML for a :class:`PairedReport`: summary, per-tissue table, curves, error map."""
    parts = [_table([("MAE (HU)", rep.mae), ("ME (HU)", rep.me), ("PSNR (dB)", rep.psnr),
                     ("SSIM", rep.ssim), ("MS-SSIM", rep.ms_ssim),
                     ("mask voxels", rep.mask_voxels), ("SSIM window", rep.ssim_window),
                     ("spatial frequency (synthetic)", rep.spatial_frequency_pred),
                     ("spatial frequency (reference)", rep.spatial_frequency_ref)]
                    + ([("SCD (fusion of the two sources)", rep.scd)] if rep.scd is not None
                       else []))]
    parts.append("<h2>Per tissue (by reference HU)</h2>")
    parts.append("<table><tr><th>tissue</th><th>MAE</th><th>ME</th><th>PSNR</th><th>SSIM</th>"
                 "<th>voxels</th></tr>" + "".join(
                     f"<tr><td>{k}</td><td>{v['mae']:.2f}</td><td>{v['me']:.2f}</td>"
                     f"<td>{v['psnr']:.2f}</td><td>{v['ssim']:.4f}</td><td>{int(v['voxels'])}</td></tr>"
                     for k, v in rep.per_tissue.items()) + "</table>")
    if rep.per_slice:
        ks = [s["slice"] for s in rep.per_slice]
        parts.append("<h2>Per slice</h2>")
        parts.append(f"<img src='{png_data_uri(curves_png(ks, {'MAE (HU)': [s['mae'] for s in rep.per_slice]}, 'MAE per slice'))}'>")
        parts.append(f"<img src='{png_data_uri(curves_png(ks, {'SSIM': [s['ssim'] for s in rep.per_slice], 'MS-SSIM': [s.get('ms_ssim', float('nan')) for s in rep.per_slice]}, 'SSIM per slice'))}'>")
    if rep.error is not None and rep.mask is not None:
        k = int(np.argmax(rep.mask.sum(axis=(1, 2))))
        err = to_grey_png(rep.error.array[k], -300.0, 300.0)
        parts.append(f"<h2>Error map, slice {k} (pred − ref, −300..300 HU)</h2>"
                     f"<img src='{png_data_uri(err)}' width='384'>")
    return _page(title, "".join(parts))


def unpaired_rows(res: UnpairedResult, memorisation: bool = False) -> list[tuple[str, Any]]:
    """The numbers of an :class:`UnpairedResult` as ``(label, value)`` rows: the report's
    table and the Evaluate panel's, with the same labels."""
    d = res.distribution
    rows: list[tuple[str, Any]] = [
        ("feature extractor", d.extractor), ("real images", d.n_real), ("synthetic images", d.n_fake),
        ("Fréchet distance", d.fd), ("KID", d.kid), ("KID std", d.kid_std),
        ("precision", d.precision), ("recall", d.recall), ("density", d.density),
        ("coverage", d.coverage), ("spatial frequency (real)", res.spatial_frequency_real),
        ("spatial frequency (synthetic)", res.spatial_frequency_fake)]
    if d.inception_score is not None:
        rows.append(("Inception Score", d.inception_score))
    for key, rep in (("C2ST", res.c2st), ("C2ST null", res.c2st_null)):
        if rep is not None:
            rows += [(f"{key}: {rep.set_a} vs {rep.set_b}", f"{rep.n_per_set} per set, {rep.folds} folds, "
                      f"{rep.size} px"),
                     (f"{key} accuracy (0.5: indistinguishable)", rep.accuracy),
                     (f"{key} accuracy spread over folds", rep.accuracy_std),
                     (f"{key} AUC", rep.auc), (f"{key} p-value", rep.p_value)]
    m = res.memorization
    if memorisation and m is not None:
        rows += [("near-copies flagged", len(m.flagged)),
                 ("exact copies", sum(bool(e.get("exact_copy")) for e in m.entries)),
                 ("near-copy threshold (features)", m.feature_threshold),
                 ("near-copy reference", m.reference)]
        if m.reference_note:
            rows.append(("reference note", m.reference_note))
    return rows


def unpaired_html(res: UnpairedResult, title: str = "Synthetic image evaluation") -> str:
    """HTML for an :class:`UnpairedResult`: metrics, distributions, memorisation gallery."""
    d = res.distribution
    parts = [_table(unpaired_rows(res))]
    if not d.extractor.startswith("inception"):
        parts.append("<p>The Fréchet distance is computed in the shipped extractor's feature "
                     "space; it is not comparable with published InceptionV3 FID values.</p>")
    if res.real_features is not None and res.fake_features is not None:
        parts.append("<h2>Feature distributions (first principal component)</h2>")
        both = np.concatenate([res.real_features, res.fake_features])
        mu = both.mean(0)
        _, _, vt = np.linalg.svd(both - mu, full_matrices=False)
        pr = (res.real_features - mu) @ vt[0]
        pf = (res.fake_features - mu) @ vt[0]
        parts.append(f"<img src='{png_data_uri(histogram_png({'real': pr, 'synthetic': pf}, 'PC1 of features'))}'>")
    m = res.memorization
    if m is not None:
        parts.append(f"<h2>Memorisation ({len(m.flagged)} of {len(m.entries)} flagged)</h2>")
        parts.append(f"<p>Reference: {html.escape(m.reference)} nearest-neighbour distances; "
                     f"threshold = their {m.percentile:g}th percentile "
                     f"(features {m.feature_threshold:.4g}, pixels {m.pixel_threshold:.4g}); "
                     f"an exact copy is always flagged.</p>")
        if m.reference_note:
            parts.append(f"<p>Note: {html.escape(m.reference_note)}.</p>")
        parts.append(f"<img src='{png_data_uri(histogram_png({'reference': m.reference_feature_distances, 'synthetic': [e['distance'] for e in m.entries]}, 'nearest-training distance (features)', markers={'threshold': m.feature_threshold}))}'>")
        shown = sorted(m.entries, key=lambda e: e["distance"])[:12]
        if res.fake_thumbs is not None and res.train_thumbs is not None:
            parts.append("<h3>Closest pairs (synthetic | nearest training image)</h3>")
            for e in shown:
                pair = np.concatenate([res.fake_thumbs[e["fake_index"]],
                                       res.train_thumbs[e["real_index"]]], axis=1)
                cls = "pair flag" if e["flagged"] else "pair"
                parts.append(f"<div class='{cls}'><img src='{png_data_uri(to_grey_png(pair, 0, 1))}'"
                             f" width='256'><br>{html.escape(Path(e['fake']).name)} | "
                             f"{html.escape(Path(e['nearest_real']).name)}<br>d = {e['distance']:.3g}"
                             f"{' FLAGGED' if e['flagged'] else ''}</div>")
    return _page(title, "".join(parts))


def utility_html(rep: UtilityReport, title: str = "Downstream utility of synthetic data") -> str:
    """HTML for a :class:`UtilityReport`: per-seed and summarised accuracy/AUC."""
    rows: list[tuple[str, Any]] = [("real training images", rep.n_train_real),
                                   ("synthetic images", rep.n_train_synthetic),
                                   ("real test images", rep.n_test), ("seeds", len(rep.seeds))]
    for k, (m, lo, hi) in rep.summary.items():
        rows.append((f"{k}: mean [95% CI]", f"{m:.4f} [{lo:.4f}, {hi:.4f}]"))
    seeds = [float(s) for s in rep.seeds]
    fig = curves_png(seeds, {"AUC real": rep.real_auc, "AUC real+synthetic": rep.mixed_auc},
                     "held-out AUC per seed")
    body = (_table(rows) + "<p>A tiny CNN trained on real images with and without the "
            "synthetic ones, scored on held-out real images.</p>"
            f"<img src='{png_data_uri(fig)}'>")
    return _page(title, body)


def write_html(text: str, path: Path | str) -> Path:
    """Write a report atomically (a failed write leaves no partial file; :class:`WriteError`)."""
    out = Path(path)
    try:
        atomic_write_text(out, text)
    except OSError as exc:
        raise write_error(exc, out, f"the report {out.name}") from exc
    return out
