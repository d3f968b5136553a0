"""One-page HTML report of a run directory: summary, every diagnostic plot, the recipe.

The page is self-contained (plots embedded as base64 PNG) so it can be mailed or archived
on its own, and is rebuilt from the files of a run directory by ``tsocontainer report
DIR``. Its title names the target, the mode and the date; its summary gives every fitted
parameter with units (times in full BJD_TDB, depths in ppm, fixed parameters marked), the
fit's quality verdict when the fit recorded one, and -- for a simulated visit, whose
``truth.json`` sits beside the input files -- the injected values next to the fitted
ones. Every figure has one line saying what to look at.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from tsocontainer._util import write_text_atomic

__all__ = ["build_report"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}
h1{font-size:1.5em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:540px}
figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:.85em;color:#444}
figcaption b{color:#222} pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:.2em .6em}
th{text-align:left} .num{text-align:right;font-family:monospace}
.suspect{background:#fde2e2;border:1px solid #c33;padding:.5em;margin:1em 0}
.good{background:#e6f4e6;border:1px solid #393;padding:.5em;margin:1em 0}
"""

#: on load, the page records how many of its images failed to decode (read by the tests)
_IMAGE_CHECK = ("<script>window.addEventListener('load',function(){var b=0;"
                "document.querySelectorAll('img').forEach(function(i){if(!i.naturalWidth)b++;});"
                "document.body.setAttribute('data-images',document.images.length);"
                "document.body.setAttribute('data-broken-images',b);});</script>")

#: parameter -> (label, unit, scale, decimals)
_UNITS = {
    "t0": ("mid-transit time t0", "BJD_TDB", 1.0, 6),
    "per": ("period", "d", 1.0, 7),
    "rp_rs": ("radius ratio Rp/Rs", "", 1.0, 5),
    "fp": ("planet-to-star flux (eclipse depth)", "ppm", 1e6, 1),
    "a_rs": ("scaled semi-major axis a/Rs", "", 1.0, 3),
    "inc": ("inclination", "deg", 1.0, 3),
    "b": ("impact parameter", "", 1.0, 3),
    "ecc": ("eccentricity", "", 1.0, 3),
    "w": ("argument of periastron", "deg", 1.0, 2),
    "q1": ("limb darkening q1", "", 1.0, 3),
    "q2": ("limb darkening q2", "", 1.0, 3),
    "u1": ("limb darkening u1", "", 1.0, 3),
    "u2": ("limb darkening u2", "", 1.0, 3),
}


def _img(path: Path, captions: dict) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.stem[3:].replace("_", " ") if path.stem[:2].isdigit() else path.stem)
    what = captions.get(path.stem, "")
    text = f"<b>{name}</b>" + (f": {html.escape(what)}" if what else "")
    return (f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption>{text}</figcaption></figure>")


def _table(header: list, rows: list) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td class='num'>{html.escape(str(v))}</td>" if i else f"<th>{html.escape(str(v))}</th>"
        for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(name: str, val: dict) -> str:
    label, unit, scale, dec = _UNITS.get(name, (name, "", 1.0, 4))
    med = val.get("median")
    if val.get("status") == "fixed":
        return f"{med * scale:.{dec}f} (fixed)"
    lo, hi = val.get("err_lo", float("nan")), val.get("err_hi", float("nan"))
    return f"{med * scale:.{dec}f} -{lo * scale:.{dec}f} +{hi * scale:.{dec}f}"


def _truth_values(run_dir: Path) -> dict:
    info = _run_info(run_dir)
    path = info.get("truth")
    if not path or not Path(path).is_file():
        return {}
    try:
        truth = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    p = dict(truth.get("params", {}))
    if "t0" in p and p["t0"] < 2.4e6:       # truth files may hold BJD_TDB - 2400000.5
        p["t0"] = p["t0"] + 2400000.5
    if "rp_rs_white" in p:
        p["rp_rs"] = p.pop("rp_rs_white")
    return p


#: parameters shown in the main table (the rest are systematics, shown below it)
_ASTRO = set(_UNITS) | {"depth", "fp", "t_secondary"}


def _fit_rows(run_dir: Path, truth: dict) -> tuple[list, list, dict]:
    fw = run_dir / "fit_white.json"
    if not fw.is_file():
        return [], [], {}
    try:
        doc = json.loads(fw.read_text())
    except (OSError, ValueError):
        return [], [], {}
    params = doc.get("params", doc)
    rows = []
    for name, val in params.items():
        if not (isinstance(val, dict) and "median" in val) or name not in _ASTRO:
            continue
        label, unit, scale, dec = _UNITS.get(name, (name, "", 1.0, 4))
        true = truth.get(name)
        row = [label, unit, _fmt(name, val)]
        if truth:
            row.append("" if true is None else f"{true * scale:.{dec}f}")
        rows.append(row)
    rp = params.get("rp_rs")
    if isinstance(rp, dict) and "median" in rp:   # depth = (Rp/Rs)^2, errors to first order
        r, lo, hi = rp["median"], rp.get("err_lo", 0.0), rp.get("err_hi", 0.0)
        row = ["transit depth (Rp/Rs)^2", "ppm",
               f"{r * r * 1e6:.1f} -{2 * r * lo * 1e6:.1f} +{2 * r * hi * 1e6:.1f}"]
        if truth:
            row.append("" if truth.get("rp_rs") is None else f"{truth['rp_rs'] ** 2 * 1e6:.1f}")
        rows.insert(0, row)
    header = ["parameter", "unit", "fit (median, 68 %)"] + (["injected"] if truth else [])
    return header, rows, doc


def _systematics_rows(doc: dict) -> list:
    params = doc.get("params", doc) if doc else {}
    out = []
    for name, val in params.items():
        if isinstance(val, dict) and "median" in val and name not in _ASTRO:
            status = val.get("status", "")
            out.append([name, status, f"{val['median']:.6g} -{val.get('err_lo', 0):.2g} "
                                      f"+{val.get('err_hi', 0):.2g}"])
    return out


def _verdict(doc: dict) -> str:
    quality = doc.get("quality") or {}
    if not quality:
        return ""
    reasons = quality.get("reasons") or []
    if quality.get("suspect"):
        items = "".join(f"<li>{html.escape(str(r))}</li>" for r in reasons)
        return f"<div class='suspect'><b>Fit marked SUSPECT</b><ul>{items}</ul></div>"
    return "<div class='good'><b>Fit checks passed</b> (convergence, chi^2, residual scatter, " \
           "prior edges, correlated noise)</div>"


def _run_info(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _title(run_dir: Path) -> str:
    info = _run_info(run_dir)
    if not info:
        return f"tsocontainer: {run_dir.resolve().name}"
    conf = "/".join(str(info[k]) for k in ("grating", "filter", "pupil") if info.get(k)
                    and str(info[k]) not in ("CLEAR", "N/A"))
    parts = [str(info.get("targname") or "unknown target"),
             " ".join(p for p in (str(info.get("instrume", "")), str(info.get("exp_type", "")),
                                  conf, str(info.get("subarray", ""))) if p),
             str(info.get("date-obs") or "")]
    return " - ".join(p for p in parts if p)


def build_report(run_dir, title: str | None = None, out=None) -> str:
    """Write ``report.html`` for a run directory.

    Parameters
    ----------
    run_dir : str or path-like
        Folder with ``plots/*.png`` and, when present, ``run.json``, ``recipe.yaml``,
        ``fit_white.json``, ``transmission_spectrum.ecsv`` and ``run.log``.
    title : str, optional
        Page title (default: target, mode and date from ``run.json``).
    out : str or path-like, optional
        Output file (default ``run_dir/report.html``), written atomically.

    Returns
    -------
    str
        Path of the report.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` does not exist.

    Examples
    --------
    >>> import tempfile
    >>> build_report(tempfile.mkdtemp()).endswith("report.html")
    True
    """
    from tsocontainer.pipeline.runplots import CAPTIONS

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    title = title or _title(run_dir)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    truth = _truth_values(run_dir)
    header, rows, doc = _fit_rows(run_dir, truth)
    if rows:
        parts.append("<h2>White-light fit</h2>" + _verdict(doc) + _table(header, rows))
        sys_rows = _systematics_rows(doc)
        if sys_rows:
            parts.append("<details><summary>systematics model terms</summary>"
                         + _table(["term", "status", "value (median, 68 %)"], sys_rows)
                         + "</details>")
        if truth:
            parts.append("<p>This is a simulated visit: the injected values come from "
                         f"{html.escape(str(_run_info(run_dir).get('truth')))}.</p>")
    plots = sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").is_dir() else []
    parts.append("<h2>Diagnostics</h2>")
    parts.append("".join(_img(p, CAPTIONS) for p in plots) if plots
                 else "<p>No plots in this run.</p>")
    recipe = run_dir / "recipe.yaml"
    if recipe.is_file():
        parts.append(f"<h2>Recipe</h2><pre>{html.escape(recipe.read_text())}</pre>")
    log = run_dir / "run.log"
    if log.is_file():
        text = log.read_text()[-20000:]
        parts.append(f"<h2>Log (last part)</h2><pre>{html.escape(text)}</pre>")
    parts.append(_IMAGE_CHECK + "</body></html>")
    out = Path(out) if out else run_dir / "report.html"
    write_text_atomic(out, "\n".join(parts))
    return str(out)
