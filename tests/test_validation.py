"""Malformed inputs and user mistakes: each gets a clear error, or an explicit conversion.

A table of cases: files and headers, time axes, data content, recipes, priors, command
lines and saved states. Each case builds its bad input in a temporary folder, runs the
call a user would make, and checks the class of the outcome and that the message names
the file (where there is one) and the cause. No case may end in a normal-looking result.
"""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from jwstfiles import make_visit
from tsocontainer.errors import TSOInputError, TSOReadError, TSOValueError
from tsocontainer.group import read_segments
from tsocontainer.group.container import TSOGroup
from tsocontainer.modes import UnsupportedModeError
from tsocontainer.pipeline.recipe import RecipeError, load_recipe
from tsocontainer.pipeline.runner import load_priors_file


# ------------------------------------------------------------------ builders
def visit(tmp, nseg=2, nint=8, **kw):
    paths, _ = make_visit(tmp, mode="soss", nint=nint, nseg=nseg, **kw)
    return [Path(p) for p in paths]


def edit(path, ext, func):
    """Apply ``func(hdu)`` to extension ``ext`` of ``path`` in place (astropy update mode)."""
    with fits.open(path, mode="update") as hdul:
        func(hdul[ext])


def set_key(ext, key, value):
    def f(hdu):
        hdu.header[key] = value
    return f


def set_times(values_fn):
    def f(hdu):
        hdu.data["int_mid_BJD_TDB"] = values_fn(np.array(hdu.data["int_mid_BJD_TDB"]))
    return f


def set_data(ext, fn):
    def f(path):
        with fits.open(path) as hdul:
            hdus = [h.copy() for h in hdul]
        for h in hdus:
            if h.name == ext:
                h.data = fn(h.data)
        fits.HDUList(hdus).writeto(path, overwrite=True)
    return f


# ------------------------------------------------------- file and header cases
def case_not_fits(tmp):
    p = tmp / "x-seg001_nis_rateints.fits"
    p.write_text("this is not FITS")
    return [p], p.name, "not a readable FITS"


def case_empty(tmp):
    p = tmp / "x-seg001_nis_rateints.fits"
    p.write_bytes(b"")
    return [p], p.name, "empty file"


def case_truncated(tmp):
    p = visit(tmp)
    data = p[1].read_bytes()
    p[1].write_bytes(data[: len(data) // 2])
    return p, p[1].name, "truncated"


def case_gzip(tmp):
    p = visit(tmp)
    p[0].write_bytes(gzip.compress(p[0].read_bytes()))
    return p, p[0].name, "compressed"


def case_no_sci(tmp):
    p = visit(tmp, nseg=1)
    with fits.open(p[0]) as hdul:
        hdus = [h.copy() for h in hdul if h.name != "SCI"]
    fits.HDUList(hdus).writeto(p[0], overwrite=True)
    return p, p[0].name, "no SCI"


def case_sci_2d(tmp):
    p = visit(tmp, nseg=1)
    set_data("SCI", lambda d: d[0])(p[0])
    return p, p[0].name, "2D, expected a 3D"


def case_no_variance(tmp):
    p = visit(tmp, nseg=1)
    with fits.open(p[0]) as hdul:
        hdus = [h.copy() for h in hdul if h.name not in ("ERR", "VAR_POISSON", "VAR_RNOISE")]
    fits.HDUList(hdus).writeto(p[0], overwrite=True)
    return p, p[0].name, "no variance"


def case_dq_2d(tmp):
    p = visit(tmp, nseg=1)
    set_data("DQ", lambda d: d[0])(p[0])
    return p, p[0].name, "DQ is 2D"


def case_dq_float(tmp):
    p = visit(tmp, nseg=1)
    set_data("DQ", lambda d: d.astype(np.float32) + 0.5)(p[0])
    return p, p[0].name, "floating-point"


def case_var_shape(tmp):
    p = visit(tmp, nseg=1)
    set_data("VAR_POISSON", lambda d: d[:, :, :-1])(p[0])
    return p, p[0].name, "VAR_POISSON shape"


def case_intstart_text(tmp):
    p = visit(tmp)
    edit(p[1], 0, set_key(0, "INTSTART", "abc"))
    return p, p[1].name, "INTSTART='abc' is not a whole number"


def case_intend_wrong(tmp):
    p = visit(tmp)
    edit(p[0], 0, set_key(0, "INTEND", 9))
    return p, p[0].name, "INTEND=9"


def case_exsegnum_wrong(tmp):
    p = visit(tmp)
    edit(p[1], 0, set_key(0, "EXSEGNUM", 7))
    return p, p[1].name, "EXSEGNUM=7"


def case_unsupported(tmp):
    p = visit(tmp)
    for f in p:
        edit(f, 0, set_key(0, "EXP_TYPE", "NIS_IMAGE"))
    return p, p[0].name, "not a supported"


def case_filter_differs(tmp):
    p = visit(tmp)
    edit(p[1], 0, set_key(0, "FILTER", "F277W"))
    return p, p[1].name, "differ in FILTER"


def case_gap(tmp):
    p = visit(tmp, nseg=3, nint=9)
    return [p[0], p[2]], p[2].name, "gap in integration numbers"


def case_same_file_twice(tmp):
    p = visit(tmp)
    return [p[0], p[0], p[1]], p[0].name, "given twice"


def case_duplicated_segment(tmp):
    p = visit(tmp)
    other = tmp / "copy"
    other.mkdir()
    shutil.copy(p[0], other / p[0].name)
    return [p[0], other / p[0].name, p[1]], p[0].name, "duplicated segment"


def case_missing_file(tmp):
    return [tmp / "nope_rateints.fits"], "nope_rateints.fits", "no such file"


def case_all_dnu(tmp):
    p = visit(tmp, nseg=1)
    set_data("DQ", lambda d: np.ones_like(d))(p[0])
    return p, p[0].name, "DO_NOT_USE"


def case_all_nan(tmp):
    p = visit(tmp, nseg=1)
    set_data("SCI", lambda d: np.full_like(d, np.nan))(p[0])
    return p, p[0].name, "nothing to reduce"


def case_zero_variance(tmp):
    p = visit(tmp, nseg=1)
    for ext in ("VAR_POISSON", "VAR_RNOISE"):
        set_data(ext, lambda d: np.zeros_like(d))(p[0])
    return p, p[0].name, "nothing to reduce"


def case_nan_variance(tmp):
    p = visit(tmp, nseg=1)
    set_data("VAR_RNOISE", lambda d: np.full_like(d, np.nan))(p[0])
    return p, p[0].name, "nothing to reduce"


def case_constant(tmp):
    p = visit(tmp, nseg=1)
    set_data("SCI", lambda d: np.full_like(d, 7.0))(p[0])
    return p, p[0].name, "constant 7.0"


def case_all_zero(tmp):
    p = visit(tmp, nseg=1)
    set_data("SCI", lambda d: np.zeros_like(d))(p[0])
    return p, p[0].name, "constant 0.0"


def case_float32_max(tmp):
    p = visit(tmp, nseg=1)
    set_data("SCI", lambda d: np.full_like(d, 3.0e38))(p[0])
    return p, p[0].name, "huge"


# ------------------------------------------------------------- time axis cases
def case_times_backwards_between_segments(tmp):
    p = visit(tmp)
    edit(p[1], "INT_TIMES", set_times(lambda t: t - 1.0))
    return p, p[1].name, "backwards"


def case_times_shuffled(tmp):
    p = visit(tmp, nseg=1)
    edit(p[0], "INT_TIMES", set_times(lambda t: t[np.r_[0, 2, 1, 3:len(t)]]))
    return p, p[0].name, "backwards"


def case_times_duplicated(tmp):
    p = visit(tmp, nseg=1)
    edit(p[0], "INT_TIMES", set_times(lambda t: np.r_[t[:3], t[2], t[4:]]))
    return p, p[0].name, "repeats"


def case_times_nan(tmp):
    p = visit(tmp, nseg=1)
    edit(p[0], "INT_TIMES", set_times(lambda t: np.where(np.arange(t.size) == 2, np.nan, t)))
    return p, p[0].name, "not finite"


def case_times_zero_based(tmp):
    p = visit(tmp, nseg=1)
    edit(p[0], "INT_TIMES", set_times(lambda t: t - t[0]))
    return p, p[0].name, "not a JWST-era MJD"


def case_times_in_seconds(tmp):
    p = visit(tmp, nseg=1)
    edit(p[0], "INT_TIMES", set_times(lambda t: t * 86400.0))
    return p, p[0].name, "not a JWST-era MJD"


def case_times_jump(tmp):
    p = visit(tmp, nseg=1)
    edit(p[0], "INT_TIMES", set_times(lambda t: np.where(np.arange(t.size) >= 5, t + 0.01, t)))
    return p, p[0].name, "time step before integration 6"


def case_cadence_contradicts_header(tmp):
    p = visit(tmp)
    for f in p:
        edit(f, 0, set_key(0, "TGROUP", 10.0))
    return p, p[0].name, "TGROUP"


def case_segment_order_unknowable(tmp):
    p = visit(tmp, int_times=False)
    out = []
    for k, f in enumerate(p):
        for key in ("EXSEGNUM", "INTSTART", "INTEND"):
            edit(f, 0, lambda h, key=key: h.header.remove(key))
        target = tmp / f"visit_part_{'ba'[k]}_rateints.fits"
        f.rename(target)
        out.append(target)
    return out, "visit_part_", "cannot tell which segment"


FILE_CASES = [case_not_fits, case_empty, case_truncated, case_gzip, case_no_sci, case_sci_2d,
              case_no_variance, case_dq_2d, case_dq_float, case_var_shape, case_intstart_text,
              case_intend_wrong, case_exsegnum_wrong, case_unsupported, case_filter_differs,
              case_gap, case_same_file_twice, case_duplicated_segment, case_missing_file,
              case_all_dnu, case_all_nan, case_zero_variance, case_nan_variance, case_constant,
              case_all_zero, case_float32_max, case_times_backwards_between_segments,
              case_times_shuffled, case_times_duplicated, case_times_nan, case_times_zero_based,
              case_times_in_seconds, case_times_jump, case_cadence_contradicts_header,
              case_segment_order_unknowable]


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.__name__[5:])
def test_bad_files_give_a_clear_error_naming_the_file(case, tmp_path):
    files, name, cause = case(tmp_path)
    with pytest.raises((TSOInputError, UnsupportedModeError, FileNotFoundError)) as info:
        read_segments(files)
    msg = str(info.value)
    assert name in msg and cause in msg, msg
    assert "\n" not in msg


def test_jd_for_mjd_is_converted_explicitly(tmp_path, caplog):
    p = visit(tmp_path)
    ref = read_segments(p).time_bjd
    for f in p:
        edit(f, "INT_TIMES", set_times(lambda t: t + 2400000.5))
    with caplog.at_level("WARNING", logger="tsocontainer.io"):
        g = read_segments(p)
    assert "full Julian dates" in caplog.text and p[0].name in caplog.text
    assert "converted" in g.meta["TIMESRC"]
    assert np.allclose(g.time_bjd, ref, rtol=0, atol=1e-6)


def test_unnumbered_segments_are_ordered_by_their_times(tmp_path):
    p = visit(tmp_path)
    ref = read_segments(p)
    named = []
    for k, f in enumerate(p):
        for key in ("EXSEGNUM", "INTSTART", "INTEND"):
            edit(f, 0, lambda h, key=key: h.header.remove(key))
        target = tmp_path / f"part_{'ba'[k]}_rateints.fits"   # name order is the wrong order
        f.rename(target)
        named.append(target)
    g = read_segments(named)
    assert np.array_equal(g.time_bjd, ref.time_bjd) and np.array_equal(g.sci, ref.sci)


# --------------------------------------------------------------- recipe cases
RECIPE_CASES = [
    ({"flag_time_outliers": {"nsigma": "four"}}, "'four' is not a number"),
    ({"flag_time_outliers": {"nsigma": -3}}, "out of range"),
    ({"flag_time_outliers": {"window": 1}}, "out of range"),
    ({"flag_time_outliers": {"window": 2.5}}, "not a whole number"),
    ({"flag_hot_cold_pixels": {"nsigma": 0}}, "out of range"),
    ({"flag_percentile_outliers": {"percentile": 150}}, "out of range"),
    ({"flag_dq": {"bits": ["NOT_A_BIT"]}}, "NOT_A_BIT"),
    ({"flag_dq": {"bitz": 1}}, "did you mean 'bits'"),
    ({"unflag": {"name": "nope"}}, "'nope' is not a choice"),
    ({"estimate_sky": {"method": "sky"}}, "'sky' is not a choice"),
    ({"estimate_sky": {"deg": -1}}, "out of range"),
    ({"correct_one_over_f": {"method": "fft"}}, "'fft' is not a choice"),
    ({"correct_one_over_f": {"method": True}}, "True is not a choice"),
    ({"replace_bad_pixels": {"var_inflation": 0.5}}, "out of range"),
    ({"replace_bad_pixels": {"method": "spatail"}}, "did you mean 'spatial'"),
    ({"fit_all_traces": {"method": "centroids"}}, "did you mean 'centroid'"),
    ({"fit_all_traces": {"orders": 0}}, "orders"),
    ({"fit_all_traces": {"deg_int": 7}}, "out of range"),
    ({"measure_shifts": {"halfwidth": -2}}, "out of range"),
    ({"detect_tilt_events": {"nsigma": "high"}}, "not a number"),
    ({"extract": {"method": 42}}, "42 is not a choice"),
    ({"extract": {"method": "boxx"}}, "did you mean 'box'"),
    ({"extract": {"width": -1}}, "width"),
    ({"extract": {"width": "optimise"}}, "width"),
    ({"extract": {"nsigma": 0}}, "out of range"),
    ({"to_lightcurves": {"bins": "twenty"}}, "not a channel count"),
    ({"to_lightcurves": {"bins": 0}}, "bins must be >= 1"),
    ({"to_lightcurves": {"bins": [2.0, 1.0]}}, "increasing"),
    ({"to_lightcurves": {"bins": {"r": 100}}}, "one key of R, pixels"),
    ({"to_lightcurves": {"order": 0}}, "out of range"),
    ({"clip_outliers": {"sigma": 0}}, "out of range"),
    ({"fit_white": {"model": {"rmap": True}}}, "rmap"),
    ({"fit_white": {"model": {"kind": "transitt"}}}, "transitt"),
    ({"fit_white": {"model": {"poly": -1}}}, "poly"),
    ({"fit_white": {"sampler": {"nwalker": 10}}}, "nwalker"),
    ({"fit_channels": {"geometry": "fixd"}}, "did you mean 'fixed'"),
    ({"fit_channels": {"workers": 0}}, "out of range"),
    ({"sky_model": {}}, "not a known step"),
    ({"flag_dqq": {}}, "did you mean 'flag_dq'"),
    ({"make_order0_mask": {"nsigma": 3}}, "needs keyword"),
]


@pytest.mark.parametrize("step, match", RECIPE_CASES,
                         ids=[f"{next(iter(s))}-{i}" for i, (s, _) in enumerate(RECIPE_CASES)])
def test_recipe_mistakes_are_caught_by_check_naming_file_step_and_value(step, match, tmp_path):
    path = tmp_path / "my_recipe.yaml"
    path.write_text(json.dumps({"steps": [{"flag_dq": {}}, step]}))   # JSON is YAML
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    msg = str(info.value)
    assert "my_recipe.yaml" in msg and "step 2" in msg and match in msg, msg


@pytest.mark.parametrize("text, match", [
    ("steps: [flag_dq: {bits: [}", "not valid YAML"),
    ("steps:\n", "no steps"),
    ("steps: []\nmodes: soss\n", "unknown top-level key"),
    ("- flag_dq\n", "mapping with a 'steps' list"),
    ("steps:\n  - extract: {}\n  - extract: {}\n", "appears twice"),
    ("steps:\n  - extract: {}\n  - flag_dq: {}\n", "comes after a spectra step"),
    ("steps:\n  - flag_dq: 3\n", "keywords must be a mapping"),
    ("steps:\n  - jwst.FlatFeldStep: {}\n", "did you mean 'FlatFieldStep'"),
])
def test_malformed_recipe_files(text, match, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=match) as info:
        load_recipe(path)
    assert "r.yaml" in str(info.value)


def test_binary_recipe_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert "r.yaml" in str(info.value)


# ---------------------------------------------------------------- priors cases
@pytest.mark.parametrize("content, match", [
    (None, "no such priors file"),
    ("t0: {normal: [1, 2]\n", ":2: not valid YAML"),
    ("- 1\n- 2\n", "must be a mapping"),
    ("t0: {gaussian: [1, 2]}\n", "gaussian"),
    ("a_rs: {uniform: [14, 8]}\n", "a_rs"),
    ("t0: {normal: [2459791.6, -0.001]}\n", "t0"),
    ("per: four\n", "per"),
    (b"\x00\xff\xfe" * 50, "priors.yaml"),
])
def test_bad_priors_files_name_the_file(content, match, tmp_path):
    path = tmp_path / "priors.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises((TSOReadError, TSOValueError)) as info:
        load_priors_file(path)
    assert "priors.yaml" in str(info.value) and match in str(info.value), str(info.value)


# ------------------------------------------------------------ command-line cases
@pytest.mark.parametrize("argv, match", [
    (["run", "{files}", "--out", "{out}", "--workers", "0"], "must be >= 1"),
    (["run", "{files}", "--out", "{out}", "--workers", "-1"], "must be >= 1"),
    (["run", "{files}", "--out", "{out}", "--workers", "two"], "not a whole number"),
    (["run", "{files}", "--out", "{out}", "--priors", "nope.yaml"], "nope.yaml: no such priors"),
    (["run", "{tmp}/missing_rateints.fits", "--out", "{out}"], "missing_rateints.fits: no such file"),
    (["run", "{files}", "--out", "{out}", "--recipe", "nope"], "nope"),
    (["info", "{tmp}/none*.fits"], "no files match"),
    (["recipe", "show", "sosss"], "sosss"),
    (["recipe", "check", "{tmp}/absent.yaml"], "absent.yaml"),
])
def test_cli_mistakes_exit_2_with_one_line(argv, match, tmp_path, capsys):
    from tsocontainer.pipeline.cli import main

    files = visit(tmp_path, nseg=1)
    argv = [a.format(files=files[0], out=tmp_path / "run", tmp=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:   # argparse rejects bad types at parse time
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert match in err[-1], err
    assert not (tmp_path / "run" / "state.fits").exists()


# ------------------------------------------------------------- saved-state cases
@pytest.fixture
def state_file(tmp_path):
    g = TSOGroup(np.random.default_rng(1).normal(10, 1, (3, 4, 5)), np.ones((3, 4, 5)),
                 dq=np.zeros((3, 4, 5), np.uint32))
    g.dqs = type(g.dqs).from_dense(np.where(np.arange(60).reshape(3, 4, 5) == 7, 4, 0))
    return Path(g.write(tmp_path / "state.fits"))


def _rewrite(path, func):
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    hdus = func(hdus)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def _ext(hdus, name, fn):
    for h in hdus:
        if h.name == name:
            fn(h)
    return hdus


@pytest.mark.parametrize("damage, match", [
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated"),
    (lambda p: p.write_text("nonsense"), "not a readable FITS"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: _rewrite(p, lambda h: _ext(h, "STATE", lambda x: setattr(
        x, "data", np.frombuffer(b"{not json", np.uint8)))), "damaged STATE"),
    (lambda p: _rewrite(p, lambda h: [x for x in h if x.name != "SCI"]), "missing 'SCI'"),
    (lambda p: _rewrite(p, lambda h: _ext(h, "VAR", lambda x: setattr(x, "data", x.data[:2]))),
     "VAR has shape"),
    (lambda p: _rewrite(p, lambda h: _ext(h, "DQINDEX", lambda x: setattr(
        x, "data", np.array([10**6])))), "outside the cube"),
    (lambda p: _rewrite(p, lambda h: [x for x in h if x.name != "STATE"]), "not a tsocontainer"),
])
def test_corrupt_state_files_name_the_file(state_file, damage, match):
    damage(state_file)
    with pytest.raises(TSOReadError) as info:
        TSOGroup.read(state_file)
    assert "state.fits" in str(info.value) and match in str(info.value), str(info.value)


def test_a_rateints_file_is_not_a_state(tmp_path):
    p = visit(tmp_path, nseg=1)
    with pytest.raises(TSOReadError, match=f"{p[0].name}.*not a tsocontainer state"):
        TSOGroup.read(p[0])
