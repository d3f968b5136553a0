"""tsocontainer side by side with exoTEDRF (NIRISS/SOSS) and ExoTiC-MIRI (MIRI/LRS).

The peers run on the same simulated files as tsocontainer, serially, in
child processes of ``benchmarks/run.py`` (``python benchmarks/peers.py`` runs
the comparison alone on newly simulated visits). Install them beside the
package with ``pip install -r benchmarks/requirements-peers.txt``; they are not
dependencies of tsocontainer. Where a peer is not installed, or one of its
steps cannot run offline, the table says so.

exoTEDRF 2.5 (SOSS), in its stage-2/3 order, each user-level step tried first:

* ``BackgroundStep`` (scaled SOSS background model: given the model that
  tsocontainer ships, so it needs no download) <-> ``estimate_sky``;
* ``BadPixStep`` (spatial + temporal outliers, replaced) <-> ``flag_dq`` +
  ``flag_hot_cold_pixels`` + ``flag_time_outliers`` + ``replace_bad_pixels``;
* tracing: the user-level ``trace_spectrum`` downloads the SpecTrace table at
  run time (no network here), so ``utils.get_centroids_soss`` (edgetrigger on
  the deep stack) is timed with the SpecTrace table tsocontainer ships
  <-> ``fit_all_traces``;
* box extraction: ``Extract1DStep(extract_method='box')`` downloads a
  wavelength map at run time, so ``stage3.do_box_extraction`` is timed at the
  same 40 px width <-> ``extract box``.

ExoTiC-MIRI 1.0.1 (MIRI LRS), stpipe steps through ``.call()`` with
``STPIPE_DISABLE_CRDS_STEPPARS=True``; ``GetWavelengthMap`` and
``GetDefaultReadNoise`` need CRDS, so the wavelength map tsocontainer ships and
the files' VAR_RNOISE are passed in; ``np.RankWarning`` (removed in numpy 2) is
aliased to ``np.exceptions.RankWarning`` for ``CleanOutliersStep``, which also
runs with ``dq_bits_to_mask=[]`` (under numpy 2 any bit list zeroes the data:
see the note in :func:`exoticmiri_lrs`):

* ``CleanOutliersStep`` <-> ``flag_dq`` + ``flag_hot_cold_pixels`` +
  ``flag_time_outliers`` + ``replace_bad_pixels``;
* ``BackgroundSubtractStep`` (row-wise) <-> ``estimate_sky`` (rows);
* ``Extract1DBoxStep`` (9 px: 4 + 1 + 4 columns) <-> ``extract box`` width 9;
* ``Extract1DOptimalStep`` (profile from CleanOutliersStep) <-> ``extract optimal``.

Precision: the white-light scatter of every package's extracted spectra,
measured the same way (:func:`_common.white_metric`).

Usage::

    python benchmarks/peers.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Monitor, load_visit, white_metric  # noqa: E402

#: what differs between a peer step and its tsocontainer counterpart (printed under the table)
CAVEATS = {
    "exotedrf": ["tracing: exoTEDRF finds one trace on the deep stack (edgetrigger); "
                 "tsocontainer's fit_all_traces fits the traces of every integration (orders 1-3)",
                 "box extraction: exoTEDRF sums the aperture column by column in Python; "
                 "tsocontainer's extract box also models and replaces flagged pixels and "
                 "returns variances and masks"],
    "exotic-miri": ["Extract1DBoxStep sums whole columns (4 + 1 + 4) around a fixed centre; "
                    "tsocontainer's box has fractional edges around the fitted trace of every "
                    "integration"],
}
#: tsocontainer steps that do what each peer step does
EQUIVALENT = {
    "exotedrf": {
        "BackgroundStep": ["estimate_sky"],
        "BadPixStep": ["flag_dq", "flag_hot_cold_pixels", "flag_time_outliers",
                       "replace_bad_pixels"],
        "tracing": ["fit_all_traces"],
        "box extraction": ["extract box"],
    },
    "exotic-miri": {
        "CleanOutliersStep": ["flag_dq", "flag_hot_cold_pixels", "flag_time_outliers",
                              "replace_bad_pixels"],
        "BackgroundSubtractStep": ["estimate_sky"],
        "Extract1DBoxStep": ["extract box width 9"],
        "Extract1DOptimalStep": ["extract optimal"],
    },
}


def _version(dist: str):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _err(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return text[:200]


def _baseline(vis):
    """exoTEDRF baseline_ints [end of pre-transit, -start of post-transit] from the truth."""
    white = np.asarray(vis.truth_arrays()["SHIFTS"]["white_lc"], float)
    intr = np.flatnonzero(white < 1 - 1e-9)
    n = white.size
    return [int(intr[0]), -int(n - intr[-1] - 1)]


def _peer_step(mon, name, func, notes, fallback=None, fallback_name=None):
    """Run a user-level peer step; on failure note why and time the fallback."""
    try:
        return mon.run(name, func, level="user"), name
    except BaseException as e:  # CRDS raises SystemExit
        if isinstance(e, KeyboardInterrupt):
            raise
        notes.append(f"{name}: could not run offline ({_err(e)})")
        if fallback is None:
            return None, None
        return mon.run(fallback_name, fallback, level="low", replaces=name), fallback_name


# ------------------------------------------------------------------ exoTEDRF (SOSS)
def exotedrf_soss(spec: dict) -> dict:
    """exoTEDRF's background, bad-pixel, tracing and box steps on a simulated SOSS visit."""
    if _version("exotedrf") is None:
        return {"installed": False, "notes": ["exotedrf is not installed"]}
    vis = load_visit(spec["folder"])
    files = list(vis.files)
    width = float(spec.get("width", 40.0))
    lo, hi = spec["white_wave"]
    tmp = tempfile.mkdtemp(prefix="bench-exotedrf-")
    os.environ["CRDS_PATH"] = tmp + "/crds"  # empty: exoTEDRF looks for its downloads here
    notes = []
    try:
        from exotedrf import stage2, stage3, utils

        from tsocontainer.cleaning.background import soss_background_model
        from tsocontainer.modes._tables import data_path

        mon = Monitor()
        base = _baseline(vis)
        shape = tuple(vis.truth["instrument"]["shape"])
        bkg_model = np.asarray(soss_background_model("SUBSTRIP256", shape), float)
        out = tmp + "/"
        res, _ = _peer_step(mon, "BackgroundStep", lambda: stage2.BackgroundStep(
            files, baseline_ints=base, background_model=bkg_model, output_dir=out).run(
            save_results=False), notes)
        data = res[0] if res is not None else files

        def badpix_low():
            deep = utils.make_baseline_stack_general(files, base)
            models, flag = [], None
            for f in data:
                m, flag = stage2.badpixstep(f, deep, output_dir=None, save_results=False,
                                            to_flag=flag)
                models.append(m)
            return models

        cleaned, _ = _peer_step(mon, "BadPixStep", lambda: stage2.BadPixStep(
            data, baseline_ints=base, output_dir=out).run(save_results=False), notes,
            badpix_low, "badpixstep")
        cube = np.concatenate([np.asarray(m.data, float) for m in cleaned])
        err = np.concatenate([np.asarray(m.err, float) for m in cleaned])
        deep = mon.run("make_deepstack", lambda: utils.make_deepstack(cube), level="low")
        table = str(data_path("jwst_niriss_spectrace_0023.fits"))
        cen, _ = _peer_step(
            mon, "trace_spectrum", lambda: stage3.trace_spectrum(cleaned, deep, output_dir=out,
                                                                 save_results=False),
            notes, lambda: utils.get_centroids_soss(deep, table, "SUBSTRIP256", save_results=False),
            "get_centroids_soss")
        ypos = np.asarray(cen[0][1], float)
        try:
            import pandas as pd

            nx = deep.shape[1]
            cols = {"xpos": np.arange(nx), "ypos o1": np.interp(np.arange(nx), cen[0][0], cen[0][1])}
            for k in (2, 3):
                cols[f"ypos o{k}"] = np.interp(np.arange(nx), cen[k - 1][0], cen[k - 1][1],
                                               right=np.nan)
            stage3.Extract1DStep(cleaned, extract_method="box", output_dir=out).run(
                extract_width=int(width), save_results=False, centroids=pd.DataFrame(cols),
                deepframe=deep)
            notes.append("Extract1DStep ran (not timed: do_box_extraction is)")
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            notes.append(f"Extract1DStep: could not run offline ({_err(e)})")
        flux, _ = mon.run("do_box_extraction", lambda: stage3.do_box_extraction(
            cube, err, ypos, width, progress=False), level="low")
        wave = np.asarray(vis.truth_arrays()["WAVE"][0], float)  # exoTEDRF's own needs a download
        white = white_metric(wave, flux, vis, lo, hi, width)
        notes.append("wavelengths of the exoTEDRF spectra: the simulator's (its wavelength "
                     "calibration downloads a map)")
        return {"installed": True, "version": _version("exotedrf"), "steps": mon.records,
                "white": white, "notes": notes, "nint": int(cube.shape[0])}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ ExoTiC-MIRI (MIRI LRS)
def exoticmiri_lrs(spec: dict) -> dict:
    """ExoTiC-MIRI's cleaning, background, box and optimal extraction on a simulated LRS visit."""
    if _version("exotic-miri") is None:
        return {"installed": False, "notes": ["exotic-miri is not installed"]}
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "True"
    notes = []
    if not hasattr(np, "RankWarning"):
        np.RankWarning = np.exceptions.RankWarning
        notes.append("np.RankWarning aliased to np.exceptions.RankWarning (removed in numpy 2; "
                     "CleanOutliersStep uses it)")
    from jwst import datamodels
    from exotic_miri.reference import GetDefaultReadNoise, GetWavelengthMap
    from exotic_miri.stage_2 import (BackgroundSubtractStep, CleanOutliersStep,
                                     Extract1DBoxStep, Extract1DOptimalStep)

    from tsocontainer.modes._tables import load_npy

    vis = load_visit(spec["folder"])
    lo, hi = spec["white_wave"]
    half = int(spec.get("half", 4))
    models = [datamodels.open(f) for f in vis.files]
    trace = np.asarray(vis.truth_arrays()["TRACE"][0], float)
    centre = int(round(float(np.nanmedian(trace))))
    mon = Monitor()
    for name, cls in (("GetWavelengthMap", GetWavelengthMap), ("GetDefaultReadNoise",
                                                               GetDefaultReadNoise)):
        try:
            cls.call(models[0])
            notes.append(f"{name} ran")
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            notes.append(f"{name}: could not run offline ({_err(e)}); "
                         + ("the wavelength map tsocontainer ships is passed in"
                            if name == "GetWavelengthMap" else "VAR_RNOISE of the files is passed in"))
    wmap = np.asarray(load_npy("miri_lrs_slitlessprism_wavelength_map_416x72.npy"), float)
    # dq_bits_to_mask=[]: under numpy 2 the step decodes DQ bits with
    # np.array(list("0101")).astype(bool), which is True for "0" as well, so any
    # bit list marks every pixel bad and the cleaned data come out all zero
    clean = dict(window_heights=[150, 100, 50, 50, 20, 20, 20], dq_bits_to_mask=[],
                 poly_order=4, outlier_threshold=5.0)
    notes.append("CleanOutliersStep run with dq_bits_to_mask=[]: under numpy 2 its DQ-bit decoding "
                 "(list of '0'/'1' strings .astype(bool)) marks every pixel bad and returns all-zero "
                 "data for any bit list; NaN pixels and spatial outliers are still cleaned")
    cleaned, _ = _peer_step(mon, "CleanOutliersStep", lambda: [
        CleanOutliersStep.call(m, **clean) for m in models], notes)
    if cleaned is None:
        return {"installed": True, "version": _version("exotic-miri"), "steps": mon.records,
                "error": "CleanOutliersStep failed", "notes": notes}
    bkg, _ = _peer_step(mon, "BackgroundSubtractStep", lambda: [BackgroundSubtractStep.call(
        c[0], method="row_wise") for c in cleaned], notes)
    data = [b[0] for b in bkg] if bkg is not None else [c[0] for c in cleaned]
    ap = dict(trace_position="constant", aperture_center=centre, aperture_left_width=half,
              aperture_right_width=half)
    # the wavelength map, profile and read noise are positional: stpipe rejects them as keywords
    box, _ = _peer_step(mon, "Extract1DBoxStep", lambda: [Extract1DBoxStep.call(d, wmap, **ap)
                                                          for d in data], notes)
    opt, _ = _peer_step(mon, "Extract1DOptimalStep", lambda: [Extract1DOptimalStep.call(
        d, wmap, c[1], np.asarray(m.var_rnoise, float), **ap)
        for d, c, m in zip(data, cleaned, models)], notes)
    notes.append("read noise for Extract1DOptimalStep: VAR_RNOISE (the step adds it to f*P as a "
                 "variance)")
    width = 2 * half + 1
    out = {"installed": True, "version": _version("exotic-miri"), "steps": mon.records,
           "aperture_center": centre, "width": width, "notes": notes}
    if box is not None:
        wave = np.asarray(box[0][0], float)
        fbox = np.concatenate([b[1] for b in box])
        out["white"] = white_metric(wave, fbox, vis, lo, hi, width)
        out["nint"] = int(fbox.shape[0])
        if opt is not None:
            fopt = np.concatenate([o[1] for o in opt])
            out["white_optimal"] = white_metric(wave, fopt, vis, lo, hi, width)
    return out


# ------------------------------------------------------------------ comparison
def compare(peer: str, peer_out: dict, tso: dict) -> dict:
    """Time ratios (peer / tsocontainer) per equivalent step and precision ratios."""
    if not peer_out.get("installed"):
        return {"peer": peer, "installed": False, "notes": peer_out.get("notes", []),
                "rows": []}
    if "error" in peer_out:
        return {"peer": peer, "installed": True, "error": peer_out["error"], "rows": []}
    tsteps = {r["step"]: r for r in tso["steps"]}
    rows = []
    replaced = {r.get("replaces"): r for r in peer_out["steps"] if r.get("replaces")}
    tot_p = tot_t = 0.0
    for pname, tnames in EQUIVALENT[peer].items():
        rec = next((r for r in peer_out["steps"] if r["step"] == pname), None)
        fallback = None
        if rec is None and pname == "tracing":
            rec = next((r for r in peer_out["steps"] if r["step"] in ("trace_spectrum",
                                                                       "get_centroids_soss")), None)
        if rec is None and pname == "box extraction":
            rec = next((r for r in peer_out["steps"] if r["step"] == "do_box_extraction"), None)
        if rec is None:
            rec = replaced.get(pname)
        if rec is None:
            rows.append({"peer_step": pname, "ran": False})
            continue
        fallback = rec["step"] if rec["step"] != pname else None
        t_peer = rec["seconds"]
        if pname == "tracing":
            deep = next((r for r in peer_out["steps"] if r["step"] == "make_deepstack"), None)
            t_peer += deep["seconds"] if deep else 0.0
        t_tso = sum(tsteps[n]["seconds"] for n in tnames if n in tsteps)
        missing = [n for n in tnames if n not in tsteps]
        tot_p += t_peer
        tot_t += t_tso
        rows.append({"peer_step": pname, "ran": True, "timed": rec["step"], "fallback": fallback,
                     "peer_s": round(t_peer, 3), "tso_steps": tnames, "tso_s": round(t_tso, 3),
                     "time_ratio": round(t_peer / t_tso, 2) if t_tso > 0 else None,
                     "missing_tso": missing, "load1": rec["load1"]})
    wc = tso.get("white_common", {})
    out = {"peer": peer, "version": peer_out.get("version"), "installed": True, "rows": rows,
           "total_peer_s": round(tot_p, 2), "total_tso_s": round(tot_t, 2),
           "total_time_ratio": round(tot_p / tot_t, 2) if tot_t else None,
           "notes": peer_out.get("notes", []) + CAVEATS.get(peer, []), "nint": peer_out.get("nint")}
    pw = peer_out.get("white")
    tw = wc.get(str(float(pw["width"]))) if pw else None
    if tw:
        out["white_peer"] = pw
        out["white_tso"] = tw
        out["precision_ratio"] = round(pw["rms_ppm"] / tw["rms_ppm"], 3)
    if "white_optimal" in peer_out and "optimal" in wc:
        out["white_peer_optimal"] = peer_out["white_optimal"]
        out["white_tso_optimal"] = wc["optimal"]
        out["precision_ratio_optimal"] = round(peer_out["white_optimal"]["rms_ppm"]
                                               / wc["optimal"]["rms_ppm"], 3)
    return out


def main(argv=None) -> int:
    """Simulate the two visits, run tsocontainer and the peers, print the comparison."""
    from _common import job

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller visits")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="bench-peers-")
    try:
        for mode, recipe, nint, peer, fn in (("soss", "soss", 60 if args.quick else 100, "exotedrf",
                                              "exotedrf_soss"),
                                             ("miri-lrs", "miri", 60 if args.quick else 300,
                                              "exotic-miri", "exoticmiri_lrs")):
            folder = f"{tmp}/{mode}"
            job({"job": "simulate", "mode": mode, "nint": nint, "nseg": 2, "out": folder})
            tso = job({"job": "pipeline", "folder": folder, "recipe": recipe, "fits": False,
                       "optimal": mode == "miri-lrs", "white_for_peers": True,
                       "extra_widths": [9] if mode == "miri-lrs" else [],
                       "white_wave": None})
            res = job({"job": "peers." + fn, "folder": folder, "white_wave": tso["white_wave"]})
            print(json.dumps(compare(peer, res, tso), indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
