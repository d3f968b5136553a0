"""Fits that cannot be right must not look right (issue 14) and the fast model (issue 19).

* time system of the priors: an MJD-based ``t0`` against full-BJD data is
  converted with a warning (and the reverse); other conventions are refused;
* event in window: no event in the data, too little baseline, a partial event
  with a trend: a ``TSOValueError`` naming the data span, the predicted
  mid-time and the likely cause, before any sampling;
* verdicts: deliberately broken fits (t0 a fraction of the duration off, a
  prior that excludes the truth, red noise) are marked suspect with their
  reasons; normal fits are not (a false-alarm check over 20 channel fits);
  the verdict travels through JSON, ECSV and the channel tables;
* API defaults: light curves of a known mode are fitted with the shipped
  recipe's model;
* the batched light curves equal batman's bit for bit, and the windowed
  solution equals the full one.

Light curves are batman transits with seeded Gaussian noise. Sampler runs are
short (``nsteps`` fixed) where only the checks are tested, and ``QUICK`` (10
autocorrelation times, 300 effective samples) where a verdict is.
"""
from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest

from tsocontainer.errors import TSOValueError
from tsocontainer.lightcurves.container import LightCurves
from tsocontainer.lightcurves.fit import ConvergenceWarning, fit_channels, fit_lightcurve
from tsocontainer.lightcurves.model import LightCurveModel, ModelSpec
from tsocontainer.lightcurves.priors import (MJD_OFFSET, TimeSystemWarning, align_time_system,
                                             parse_priors)
from tsocontainer.lightcurves.quality import beta_factor, edge_masses
from tsocontainer.lightcurves.results import FitResult, TransmissionSpectrum
from tsocontainer.lightcurves.window import check_event_window, event_durations

T0, PER, A_RS, INC = 2460000.5, 3.0, 10.0, 87.0
GEOM = {"t0": T0, "per": PER, "a_rs": A_RS, "inc": INC, "u1": 0.3, "u2": 0.2}
QUICK = {"tau_factor": 10, "min_ess": 300, "check_every": 250}
SHORT = {"nsteps": 60, "nwalkers": 16}  # checks only: the chain is not used
DUR = event_durations(PER, A_RS, A_RS * np.cos(np.radians(INC)), 0.1)[0]  # 0.0927 d


def batman_lc(t, rp=0.1, t0=T0):
    import batman

    p = batman.TransitParams()
    p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = t0, PER, rp, A_RS, INC, 0.0, 90.0
    p.u, p.limb_dark = [0.3, 0.2], "quadratic"
    return batman.TransitModel(p, t).light_curve(p)


def noisy(seed, n=300, sigma=1e-3, half=0.15, centre=T0, red=0.0):
    rng = np.random.default_rng(seed)
    t = centre + np.linspace(-half, half, n)
    f = batman_lc(t) + rng.normal(0, sigma, n)
    if red:  # a smoothed random walk: correlated over ~20 points (~20 min)
        from scipy.ndimage import gaussian_filter1d

        r = gaussian_filter1d(rng.normal(size=n + 100), 20)[50:50 + n]
        f += red * (r - r.mean()) / r.std()
    return t, f, np.full(n, sigma)


def _short(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kw)


# ------------------------------------------------------------------ time system
def test_mjd_based_t0_is_converted_with_a_warning():
    t, f, e = noisy(1)
    mjd = T0 - MJD_OFFSET
    pri = {**GEOM, "t0": {"uniform": [mjd - 0.01, mjd + 0.01]}}
    with pytest.warns(TimeSystemWarning, match=r"MJD-based .* converted by \+2400000.5 d"):
        res = _short(fit_lightcurve, t, f, e, pri, sampler=SHORT)
    assert res.priors["t0"] == f"uniform({T0 - 0.01:.10g}, {T0 + 0.01:.10g})"
    assert res.diagnostics["time_system"] and abs(res["t0"] - T0) < 0.01
    # and the reverse: data on the MJD-based axis, t0 as a full BJD_TDB
    with pytest.warns(TimeSystemWarning, match=r"converted by -2400000.5 d"):
        res = _short(fit_lightcurve, t - MJD_OFFSET, f, e, {**GEOM, "t0": T0}, sampler=SHORT)
    assert res["t0"] == T0 - MJD_OFFSET


def test_time_system_alignment_rules():
    pri = parse_priors({"t0": {"normal": [60000.0, 0.001], "init": 60000.0005}, "per": 3.0})
    out, notes = align_time_system(pri, [T0], warn=False)
    assert out["t0"].a == T0 and out["t0"].b == 0.001
    assert out["t0"].init == pytest.approx(T0 + 0.0005, rel=0, abs=1e-9)  # float64 at 2.46e6 d: 0.5 ns
    assert out["per"] is pri["per"] and len(notes) == 1
    for t0 in (9999.5, T0, 0.5):  # BJD - 2450000, already full, relative: never changed
        out, notes = align_time_system(parse_priors({"t0": t0}), [T0], warn=False)
        assert out["t0"].a == t0 and not notes


@pytest.mark.parametrize("t0, cause", [
    (T0 - 2450000.0, "BJD - 2450000 or TESS BTJD"),
    (T0 + 100.0, r"t0 is 100.0 days \(33.3 periods\) from the data .* wrong epoch or period\?"),
    (T0 + 1.0, r"falls 20\.\d h after the data: wrong t0\?"),
])
def test_no_event_in_the_data_is_refused_with_the_cause(t0, cause):
    t, f, e = noisy(2)
    with pytest.raises(TSOValueError, match=cause) as info:
        fit_lightcurve(t, f, e, {**GEOM, "t0": t0}, sampler=SHORT)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("fit_lightcurve: no transit in the data")
    assert f"data span {t[0]:.5f}-{t[-1]:.5f}" in msg and "predicted mid-time" in msg


def test_no_point_in_the_event_inside_the_span_names_the_gap():
    # every in-transit point masked (a clipper gone wrong, a data gap): the predicted
    # mid-time lies inside the data span, so "falls 0.0 h after the data" was wrong
    t, f, e = noisy(2)
    keep = np.abs(t - T0) > 0.6 * DUR
    with pytest.raises(TSOValueError, match=r"falls in a \d\.\d\d h gap of the usable points") as info:
        fit_lightcurve(t[keep], f[keep], e[keep], {**GEOM, "t0": T0}, sampler=SHORT)
    assert "after the data" not in str(info.value)


def test_wrong_period_and_eclipse_window():
    t, f, e = noisy(3)
    with pytest.raises(TSOValueError, match="wrong epoch or period"):
        fit_lightcurve(t, f, e, {**GEOM, "t0": T0 - 30 * 3.01}, sampler=SHORT)
    # the same epoch with the right period is fine: the event is found 30 periods later
    check_event_window(t, LightCurveModel(t, f, e, {**GEOM, "t0": T0 - 30 * PER}).priors, ModelSpec())
    ecl = {"t_sec": T0 + 0.5, "per": PER, "a_rs": A_RS, "inc": INC, "rp_rs": 0.1}
    with pytest.raises(TSOValueError, match="no eclipse in the data"):
        fit_lightcurve(t, f, e, ecl, model={"kind": "eclipse"}, sampler=SHORT)


def test_a_broad_t0_prior_that_allows_the_event_is_accepted():
    t, f, e = noisy(4)
    # centre 0.3 d after the data, but the prior reaches back over the transit
    pri = LightCurveModel(t, f, e, {**GEOM, "t0": {"uniform": [T0 - 0.05, T0 + 0.65]}}).priors
    info = check_event_window(t, pri, ModelSpec())
    # the duration is computed at the priors' starting values (rp_rs 0.25: the default prior's centre)
    b = A_RS * np.cos(np.radians(INC))
    assert info["n_in"] == 0 and info["duration"] == event_durations(PER, A_RS, b, 0.25)[0]


@pytest.mark.parametrize("half, centre, spec, match", [
    (0.04, T0, {"poly": 1}, "only 0 out-of-transit points"),           # all in transit
    (0.08, T0 - 0.07, {"poly": 1}, "baseline on one side only"),       # egress missing
    (0.08, T0 + 0.07, {"poly": 0, "ramp": True}, "before the transit: the ramp"),  # ingress missing
])
def test_too_little_baseline_is_refused(half, centre, spec, match):
    t, f, e = noisy(5, n=200, half=half, centre=centre)
    with pytest.raises(TSOValueError, match=match):
        fit_lightcurve(t, f, e, GEOM, model=spec, sampler=SHORT)


def test_partial_event_with_a_constant_baseline_is_accepted():
    t, f, e = noisy(6, n=200, half=0.08, centre=T0 + 0.07)
    m = LightCurveModel(t, f, e, GEOM, {"poly": 0})
    info = check_event_window(t, m.priors, m.spec)
    assert info["n_before"] == 0 and info["n_after"] > 50  # the data start in the transit


def test_channel_fits_check_the_window_before_fitting():
    t, f, e = noisy(7)
    lc = LightCurves(t, np.vstack([f, f]), np.vstack([e, e]), [1.0, 2.0], [2.0, 3.0])
    with pytest.raises(TSOValueError, match=r"fit_channels: channel 0: no transit in the data"):
        fit_channels(lc, {**GEOM, "t0": T0 + 100.0}, sampler=SHORT)


# -------------------------------------------------------------------- verdicts
def test_normal_fit_is_not_suspect_and_its_record_is_complete():
    t, f, e = noisy(10)
    res = fit_lightcurve(t, f, e, {**GEOM, "rp_rs": {"uniform": [0, 0.3]}}, sampler={**QUICK, "seed": 1})
    q = res.quality
    assert not res.suspect and res.verdict == "ok" and q["reasons"] == []
    assert q["convergence"]["ess"] >= 300 and abs(q["noise"]["scatter_ratio"] - 1) < 0.15
    assert 0.5 < q["red_noise"]["beta"] < q["red_noise"]["beta_limit"]
    assert q["prior_edges"]["rp_rs"]["mass"] == 0.0  # [0, 0.3]: only the upper edge is checked


def test_t0_off_by_a_fraction_of_the_duration_is_suspect():
    t, f, e = noisy(11)
    res = fit_lightcurve(t, f, e, {**GEOM, "t0": T0 + 0.2 * DUR}, sampler={**QUICK, "seed": 2})
    assert res.suspect
    assert any(r.startswith(("red noise:", "noise:")) for r in res.reasons), res.reasons
    assert "SUSPECT" in repr(res) and res.verdict.startswith("SUSPECT: ")


def test_prior_excluding_the_truth_is_suspect():
    t, f, e = noisy(12)
    res = fit_lightcurve(t, f, e, {**GEOM, "rp_rs": {"uniform": [0.5, 0.9]}},
                         sampler={**QUICK, "seed": 3})
    assert res.suspect
    assert any(r.startswith("prior edge: rp_rs piled at its lower bound 0.5") for r in res.reasons)


def test_red_noise_is_suspect():
    t, f, e = noisy(13, red=1e-3)
    res = fit_lightcurve(t, f, e, GEOM, sampler={**QUICK, "seed": 4})
    assert res.suspect and any(r.startswith("red noise: beta") for r in res.reasons), res.reasons


def test_unconverged_fit_is_suspect():
    t, f, e = noisy(14)
    res = _short(fit_lightcurve, t, f, e, GEOM, sampler={"nsteps": 40, "seed": 5})
    assert res.suspect and res.reasons[0].startswith("convergence:")


def test_false_alarms_over_twenty_normal_channel_fits(tmp_path):
    # 20 channels, each its own noise draw, geometry fixed to the truth: the
    # verdict should pass them all (expected false alarms: <= 0.5 % per fit from
    # beta by construction, ~0 from the other checks; allow one in 20)
    rng = np.random.default_rng(20)
    t = T0 + np.linspace(-0.15, 0.15, 200)
    flux = batman_lc(t)[None, :] * (1 + rng.normal(0, 1e-3, (20, 1))) + rng.normal(0, 1e-3, (20, 200))
    lc = LightCurves(t, flux, np.full(flux.shape, 1e-3), np.arange(20) + 1.0, np.arange(20) + 2.0)
    fits = fit_channels(lc, {**GEOM, "rp_rs": {"uniform": [0, 0.3]}}, workers=2,
                        sampler={**QUICK, "seed": 20})
    print(f"suspect: {fits.suspect.sum()} of 20; {[r.reasons for r in fits if r.suspect]}")
    assert fits.suspect.sum() <= 1
    tab = fits.to_table()
    assert list(tab["suspect"]) == list(fits.suspect) and "suspect_reasons" in tab.colnames
    assert np.array_equal(fits.spectrum.suspect, fits.suspect)
    fits.spectrum.write(tmp_path / "ts.ecsv")
    back = TransmissionSpectrum.read(tmp_path / "ts.ecsv")
    assert np.array_equal(back.suspect, fits.suspect) and "suspect channel" in repr(back)


def test_verdict_travels_through_json_and_ecsv(tmp_path):
    t, f, e = noisy(15)
    res = _short(fit_lightcurve, t, f, e, GEOM, sampler={"nsteps": 40, "seed": 6})
    assert res.suspect
    for suffix in (".json", ".ecsv"):
        res.write(tmp_path / f"r{suffix}")
        back = FitResult.read(tmp_path / f"r{suffix}")
        assert back.suspect and back.reasons == res.reasons
        assert back.quality == json.loads(json.dumps(back.quality))
    assert json.loads((tmp_path / "r.json").read_text())["suspect"] is True


def test_beta_and_prior_edge_measures():
    rng = np.random.default_rng(0)
    white = rng.standard_normal((200, 400))
    b = beta_factor(white, [5, 10, 20])
    # white noise: beta ~ 1 with a spread of ~0.1 for 20-80 bins
    assert abs(np.median(b) - 1) < 0.05 and np.quantile(b, 0.995) < 1.5
    red = np.cumsum(rng.standard_normal(400))
    assert beta_factor((red - red.mean()) / red.std(), [5, 10, 20]) > 3
    pri = parse_priors({"rp_rs": {"uniform": [0.5, 0.9]}, "inc": {"uniform": [80, 90]},
                        "q1": {"uniform": [0, 1]}, "jitter": {"loguniform": [1e-6, 1e-2]}})
    samples = {"rp_rs": np.full(100, 0.5001), "inc": np.full(100, 89.99), "q1": np.zeros(100),
               "jitter": np.full(100, 1.01e-6)}
    edges = edge_masses(samples, pri)
    assert edges["rp_rs"] == {"side": "lower", "bound": 0.5, "mass": 1.0, "marginalised": False}
    # inc 90, q in [0, 1] and a jitter's lower bound are physical / "no signal": exempt
    assert edges["inc"]["side"] == "lower" and edges["inc"]["mass"] == 0.0
    assert "q1" not in edges and edges["jitter"]["side"] == "upper"


# ------------------------------------------------------------------ API defaults
def test_default_model_is_the_recipes(caplog):
    from tsocontainer.lightcurves.defaults import recipe_model

    rng = np.random.default_rng(30)
    t = T0 + np.linspace(-0.15, 0.15, 300)
    tilt = (t > T0 + 0.05).astype(float)
    f = batman_lc(t) * (1 + 2e-3 * tilt) + rng.normal(0, 5e-4, t.size)
    lc = LightCurves(t, f, np.full(t.size, 5e-4), [1.0], [2.0], meta={"MODE": "NIRISS SOSS SUBSTRIP256"},
                     regressors={"tilt": tilt})
    with caplog.at_level(logging.INFO, logger="tsocontainer.lightcurves.fit"):
        res = _short(lc.fit_white, GEOM, sampler=SHORT)
    assert res.model["ramp"] and res.model["regressors"] == ["tilt?"] and res.status["reg_tilt"] == "marginalised"
    assert "fit_white: no model given: transit, poly 1, ramp, regressors tilt? from the soss recipe " \
           "(regressors present: tilt?)" in caplog.text
    assert recipe_model({"MODE": "miri"}) == ({"poly": 1, "ramp": True, "regressors": ["tilt?", "fwhm?", "shift_x?"]},
                                             "the miri recipe")
    # channel fits default to the white-light fit's model
    fits = _short(lc.fit_channels, sampler=SHORT)
    assert fits[0].model == res.model
    # plain light curves: the generic default, optional regressors skipped when absent
    plain = LightCurves(t, f, np.full(t.size, 5e-4), [1.0], [2.0])
    res = _short(plain.fit_white, GEOM, sampler=SHORT)
    assert res.model["poly"] == 1 and not res.model["ramp"] and "reg_tilt" not in res.status


# -------------------------------------------------------------- fast model
def _walkers(m, nb, rng, spread=1e-2):
    scale = np.array([m.priors[n].scale for n in m.lay.sampled])
    th = m.start() + spread * scale * rng.standard_normal((nb, m.ndim))
    return np.clip(th, [m.priors[n].lo for n in m.lay.sampled], [m.priors[n].hi for n in m.lay.sampled])


@pytest.mark.parametrize("priors, spec", [
    ({"t0": {"uniform": [T0 - 0.02, T0 + 0.02]}, "a_rs": {"uniform": [5, 20]},
      "inc": {"uniform": [80, 90]}}, {}),                                          # free orbit
    ({"t0": T0, "a_rs": A_RS, "inc": INC}, {"ramp": True}),                      # fixed orbit
    ({"t0": {"uniform": [T0 - 0.02, T0 + 0.02]}, "a_rs": {"uniform": [5, 20]},
      "inc": {"uniform": [80, 90]}, "c0": {"normal": [1.0, 0.01]}}, {"ramp": True, "poly": 2}),
    ({"t0": T0 - 3 * PER, "a_rs": {"uniform": [5, 20]}, "inc": {"uniform": [80, 90]}},
     {"limb_darkening": "linear"}),                                              # epoch 3
    ({"t0": T0, "a_rs": A_RS, "inc": INC, "ecc": {"uniform": [0, 0.3]}, "w": 80.0}, {}),  # eccentric
])
def test_batched_light_curves_equal_batman_and_window_solution_equals_full(priors, spec):
    rng = np.random.default_rng(40)
    t, f, e = noisy(40, n=500)
    m = LightCurveModel(t, f, e, {"per": PER, **priors}, spec)
    assert m._batch.fast
    th = _walkers(m, 24, rng)
    p = m.expand(th)
    keep = m._valid(p)
    p = {k: v[keep] for k, v in p.items()}
    fast = m.astro(p)
    m._batch.fast = False
    slow = m.astro(p)
    m._batch.fast = True
    assert np.array_equal(fast, slow)  # the same compiled kernels on the same numbers
    a, b = m._solve(th[keep]), m._solve(th[keep], full=True)
    # running sums instead of direct sums: the log likelihood (~ -300) agrees to 1e-8
    assert np.allclose(a.loglike, b.loglike, rtol=0, atol=1e-8)
    assert np.allclose(a.beta, b.beta, rtol=1e-9, atol=0)


def test_batched_eclipse_equals_batman():
    rng = np.random.default_rng(41)
    ts = T0 + PER / 2
    t = ts + np.linspace(-0.15, 0.15, 400)
    f = 1 + rng.normal(0, 1e-3, t.size)
    m = LightCurveModel(t, f, np.full(t.size, 1e-3), {"t_sec": {"uniform": [ts - 0.02, ts + 0.02]},
                        "per": PER, "a_rs": A_RS, "inc": INC, "rp_rs": 0.1}, {"kind": "eclipse"})
    p = m.expand(_walkers(m, 16, rng))
    fast = m.astro(p)
    m._batch.fast = False
    assert np.array_equal(fast, m.astro(p))


# ------------------------------------------------------------ common-mode error
def test_common_mode_error_matches_refits_over_the_white_posterior(tmp_path):
    # a weak white-light fit (impact parameter 0.8, noisy): the geometry it fixes
    # moves the channel depths; err_common (linearised, +/- 1 sigma along the
    # principal axes) must equal the spread of the channel's best-fit depth over
    # draws of the white posterior
    from tsocontainer.lightcurves.common import _depth_at

    rng = np.random.default_rng(50)
    inc = float(np.degrees(np.arccos(0.8 / A_RS)))
    t = T0 + np.linspace(-0.15, 0.15, 300)

    def lc_at(d):
        import batman

        p = batman.TransitParams()
        p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = T0, PER, np.sqrt(d), A_RS, inc, 0.0, 90.0
        p.u, p.limb_dark = [0.3, 0.2], "quadratic"
        return batman.TransitModel(p, t).light_curve(p)

    flux = np.array([lc_at(0.01), lc_at(0.0105)]) + rng.normal(0, 2e-3, (2, t.size))
    lc = LightCurves(t, flux, np.full(flux.shape, 2e-3), [1.0, 2.0], [2.0, 3.0])
    pri = {"t0": {"uniform": [T0 - 0.02, T0 + 0.02]}, "per": PER, "a_rs": {"uniform": [5, 20]},
           "inc": {"uniform": [75, 90]}, "u1": 0.3, "u2": 0.2}
    white = lc.fit_white(pri, model={"poly": 1}, sampler={**QUICK, "seed": 50})
    fits = lc.fit_channels({"u1": 0.3, "u2": 0.2}, model={"poly": 1}, sampler={**QUICK, "seed": 51})
    ts = fits.spectrum
    assert ts.err_common is not None and np.all(ts.err_common > 0.3 * ts.err)  # the case is weak
    assert fits.to_table()["depth_err_common"][0] == pytest.approx(1e-6 * ts.err_common[0])
    # the written spectrum carries the error of an absolute depth too, and reads back
    path = ts.write(tmp_path / "spectrum.ecsv")
    from astropy.table import Table

    tab = Table.read(path)
    assert tab["err_total_ppm"][0] == pytest.approx(np.hypot(ts.err[0], ts.err_common[0]))
    assert tab["err_total_ppm"][0] > 1.04 * tab["err_ppm"][0]
    assert TransmissionSpectrum.read(path).err_total[0] == pytest.approx(tab["err_total_ppm"][0])
    cm = fits[0].diagnostics["common_mode"]
    assert cm["names"] == ["t0", "a_rs", "inc"] and len(cm["shifts"]) == 3
    # brute force: the channel's least-squares depth at 60 white posterior draws
    m = LightCurveModel(t, flux[0], np.full(t.size, 2e-3), {**GEOM, "inc": inc}, {"poly": 1})
    idx = rng.choice(white.samples.shape[0], 60, replace=False)
    draws = [{n: white.sample(n)[i] for n in ("t0", "a_rs", "inc")} for i in idx]
    depths = [_depth_at(t, flux[0], np.full(t.size, 2e-3), m.priors, m.spec, {}, d) for d in draws]
    # a white-light result read back from its JSON (no samples) gives the same common-mode error
    white.write(tmp_path / "white.json")
    again = fit_channels(lc[:1], {"u1": 0.3, "u2": 0.2}, white=FitResult.read(tmp_path / "white.json"),
                         model={"poly": 1}, sampler={**QUICK, "seed": 51})
    assert again.spectrum.err_common[0] == pytest.approx(ts.err_common[0], rel=1e-9)
    print(f"err {ts.err[0]:.0f} ppm, err_common {ts.err_common[0]:.0f} ppm, "
          f"spread over 60 draws {1e6 * np.std(depths, ddof=1):.0f} ppm")
    # 60 draws: the sample sd is known to ~9 %; linearisation adds a little more: 30 %
    assert np.std(depths, ddof=1) * 1e6 == pytest.approx(ts.err_common[0], rel=0.3)
