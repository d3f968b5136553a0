"""Fitting light curves made elsewhere, joint fits and limb darkening from tables (issue 19).

* a plain time/flux/error series needs no wavelengths (``LightCurves.from_arrays``);
  masked points (NaN or a mask) are left out of the likelihood, exactly;
* bounds of marginalised linear coefficients are honoured (the coefficient is
  sampled when the data reach them), never silently ignored;
* joint fits of two visits with a shared orbit recover the injected values and
  write/read their per-visit parts;
* limb-darkening tables map onto channels as fixed or normal priors; ExoTiC-LD
  computes one from a custom stellar model when installed (skipped otherwise).

Light curves are batman transits with seeded Gaussian noise; the recovery tolerance
is 3 sigma per parameter over a few seeds (see ``tests/test_fit_models.py``), and
``benchmarks/bench_models.py`` runs the joint case over >= 50 seeds.
"""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.lightcurves.container import LightCurves
from tsocontainer.lightcurves.fit import fit_channels, fit_lightcurve, usable_points
from tsocontainer.lightcurves.joint import fit_joint
from tsocontainer.lightcurves.limbdark import exotic_ld_table, ld_priors, read_ld_table
from tsocontainer.lightcurves.model import LightCurveModel
from tsocontainer.lightcurves.results import FitResult

T0, PER, A_RS, INC = 2460000.5, 3.0, 10.0, 87.0
GEOM = {"t0": T0, "per": PER, "a_rs": A_RS, "inc": INC, "u1": 0.3, "u2": 0.2}
QUICK = {"tau_factor": 10, "min_ess": 300, "check_every": 250}


def batman_lc(t, rp=0.1, u=(0.3, 0.2)):
    import batman

    p = batman.TransitParams()
    p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = T0, PER, rp, A_RS, INC, 0.0, 90.0
    p.u, p.limb_dark = list(u), "quadratic"
    return batman.TransitModel(p, t).light_curve(p)


def within(res, name, truth, k=3.0):
    m = res.median[name]
    return abs(m - truth) < k * (res.err_hi[name] if m < truth else res.err_lo[name])


# ------------------------------------------------------- plain series
def test_plain_series_without_wavelengths_and_masked_points(tmp_path):
    rng = np.random.default_rng(1)
    t = T0 + np.linspace(-0.12, 0.12, 300)
    f = batman_lc(t) + rng.normal(0, 1e-3, t.size)
    reg = rng.normal(size=t.size)
    f[[10, 150]] = np.nan                    # a gap and a bad value
    mask = np.ones(t.size, bool)
    mask[200] = False                        # flagged by the user
    reg[250] = np.nan                        # a regressor without a value
    lc = LightCurves.from_arrays(t, f, 1e-3, mask=mask, regressors={"x": reg})
    assert not lc.has_wavelengths and int(lc.clipped.sum()) == 4
    assert "no wavelengths" in repr(lc)
    res = lc.fit_white(GEOM, model={"regressors": ["x"]}, sampler={**QUICK, "seed": 1})
    keep = np.ones(t.size, bool)
    keep[[10, 150, 200, 250]] = False
    ref = fit_lightcurve(t[keep], f[keep], np.full(keep.sum(), 1e-3), GEOM,
                         model={"regressors": ["x"]}, regressors={"x": reg[keep]},
                         sampler={**QUICK, "seed": 1})
    # the masked points are simply not in the likelihood: the same numbers, bit for bit
    assert res.median == ref.median and res.diagnostics["npoints"] == 296
    assert res.wave_lo is None and within(res, "depth", 0.01)
    again = fit_lightcurve(t, f, np.full(t.size, 1e-3), GEOM, model={"regressors": ["x"]},
                           regressors={"x": reg}, mask=mask, sampler={**QUICK, "seed": 1})
    assert again.median == ref.median and again.diagnostics["masked"] == 4
    assert lc.copy().unclip().clipped[0].tolist() == [False] * 10 + [True] + [False] * 139 + \
        [True] + [False] * 99 + [True] + [False] * 49   # NaN flux, and the regressor's gap
    back = LightCurves.read(lc.write(tmp_path / "lc.ecsv"))
    assert not back.has_wavelengths and np.array_equal(back.clipped, lc.clipped)
    with pytest.raises(ValueError, match="no wavelengths"):
        lc.white((1.0, 2.0))
    import matplotlib.pyplot as plt

    assert lc.plot_white().get_title() == "white light"          # no "nan-nan micron"
    assert lc.plot_waterfall().get_yticklabels()[0].get_text() == "0"
    plt.close("all")


def test_plain_series_input_errors():
    t = np.linspace(0, 1, 10)
    with pytest.raises(ValueError, match="repeated"):
        LightCurves.from_arrays(np.r_[t[:5], t[:5]], np.ones(10), 1e-3)
    with pytest.raises(ValueError, match="zero or negative"):
        LightCurves.from_arrays(t, np.ones(10), np.r_[0.0, np.full(9, 1e-3)])
    with pytest.raises(ValueError, match="both wave_lo and wave_hi"):
        LightCurves(t, np.ones(10), np.full(10, 1e-3), [1.0])
    lc = LightCurves.from_arrays(t[::-1], np.arange(10.0), 1e-3)   # sorted, not refused
    assert np.array_equal(lc.time, t) and lc.flux[0, 0] == 9.0
    out = usable_points(t, np.ones(10), np.full(10, 1e-3), {"x": np.r_[np.nan, np.ones(9)]})
    assert out[4] == 1 and out[0][0] == t[1]


# ------------------------------------------ bounds of marginalised terms
def test_bounds_of_marginalised_coefficients_are_honoured():
    rng = np.random.default_rng(2)
    t = T0 + np.linspace(-0.12, 0.12, 300)
    f = batman_lc(t) * 1.0003 + rng.normal(0, 1e-3, t.size)
    # c0 is known to ~7e-5: a bound 1.5e-4 above the optimum is inside 5 sigma
    tight = {**GEOM, "c0": {"uniform": [0.99, 1.0004]}, "c1": 0.0}
    res = fit_lightcurve(t, f, np.full(t.size, 1e-3), tight, sampler={**QUICK, "seed": 2})
    assert res.diagnostics["sampled_linear"] == ["c0"] and res.status["c0"] == "free"
    assert res.sample("c0").max() <= 1.0004          # the bound holds in every draw
    free = fit_lightcurve(t, f, np.full(t.size, 1e-3), tight, model={"marginalize": False},
                          sampler={**QUICK, "seed": 2})
    # the same posterior as sampling c0 outright: medians within 0.3 sigma (QUICK chains)
    assert abs(res["depth"] - free["depth"]) < 0.3 * free.err_hi["depth"]
    wide = fit_lightcurve(t, f, np.full(t.size, 1e-3), {**GEOM, "c0": {"uniform": [0.99, 1.01]},
                                                       "c1": 0.0}, sampler={**QUICK, "seed": 2})
    assert wide.diagnostics["sampled_linear"] == [] and wide.status["c0"] == "marginalised"
    m = LightCurveModel(t, f, np.full(t.size, 1e-3), tight)
    assert m.binding_bounds(np.array([0.1])) == ["c0"]


# ------------------------------------------------------------ joint
def _visits(seed, rp=(0.1, 0.1)):
    rng = np.random.default_rng(seed)
    lcs = []
    for k, (n, sig, level) in enumerate([(300, 1e-3, 1.0), (250, 1.5e-3, 1.002)]):
        t = T0 + 10 * k * PER + np.linspace(-0.12, 0.12, n)   # the second visit 10 orbits later
        f = batman_lc(t, rp=rp[k]) * level + rng.normal(0, sig, n)
        lcs.append(LightCurves.from_arrays(t, f, sig))
    return lcs


JOINT_PRIORS = {"t0": {"uniform": [T0 - 0.01, T0 + 0.01]}, "per": {"normal": [PER, 1e-3]},
                "a_rs": {"uniform": [5, 20]}, "inc": {"uniform": [80, 90]}, "u1": 0.3, "u2": 0.2}


def test_joint_two_visits_recovered_and_read_back(tmp_path):
    for seed in (11, 12):
        lcs = _visits(seed, rp=(0.1, 0.105))
        res = fit_joint(lcs, JOINT_PRIORS, labels=["v1", "v2"], sampler={**QUICK, "seed": seed})
        assert {"t0", "per", "a_rs", "inc", "rp_rs@v1", "rp_rs@v2", "c0@v2"} <= set(res.names)
        for name, truth in {"t0": T0, "per": PER, "a_rs": A_RS, "inc": INC, "rp_rs@v1": 0.1,
                            "rp_rs@v2": 0.105, "c0@v2": 1.002}.items():
            assert within(res, name, truth), (seed, name)
        assert [p.diagnostics["label"] for p in res.parts] == ["v1", "v2"]
        assert res.parts[1].median["rp_rs"] == res.median["rp_rs@v2"] and res.parts[1].time.size == 250
        assert res.parts[0].median["a_rs"] == res.median["a_rs"] and not res.suspect, res.reasons
    for suffix in (".json", ".ecsv"):
        back = FitResult.read(res.write(tmp_path / f"joint{suffix}"))
        assert back.median == res.median and back.parts[1].median == res.parts[1].median
        assert back.model["shared"] == ["t0", "per", "a_rs", "inc"]


def test_joint_fit_is_tighter_than_either_visit():
    lcs = _visits(13)
    res = fit_joint(lcs, JOINT_PRIORS, sampler={**QUICK, "seed": 13})
    one = fit_lightcurve(lcs[0].time, lcs[0].flux[0], lcs[0].err[0], JOINT_PRIORS,
                         sampler={**QUICK, "seed": 13})
    # two visits of one orbit: a_rs from 550 points instead of 300 (expected ~0.75x)
    assert res.err_hi["a_rs"] + res.err_lo["a_rs"] < 0.95 * (one.err_hi["a_rs"] + one.err_lo["a_rs"])


def test_joint_fit_refuses_what_cannot_be_shared():
    lcs = _visits(14)
    with pytest.raises(ValueError, match="at least two"):
        fit_joint(lcs[:1], JOINT_PRIORS)
    with pytest.raises(ValueError, match="linear systematics coefficient"):
        fit_joint(lcs, JOINT_PRIORS, shared=["t0", "c0"])
    with pytest.raises(ValueError, match="different priors"):
        fit_joint(lcs, JOINT_PRIORS, priors_each=[{"a_rs": {"uniform": [5, 20]}},
                                                  {"a_rs": {"uniform": [6, 20]}}])
    with pytest.raises(ValueError, match="not a parameter"):
        fit_joint(lcs, JOINT_PRIORS, shared=["t0", "jitter"])
    mjd = LightCurves.from_arrays(lcs[1].time - 2400000.5, lcs[1].flux[0], lcs[1].err[0])
    with pytest.raises(ValueError, match="different conventions"):
        fit_joint([lcs[0], mjd], JOINT_PRIORS)


# ---------------------------------------------------- limb darkening
def _ld_table():
    from astropy.table import Table

    return Table({"wave_lo": [2.9, 3.4, 4.0, 4.6], "wave_hi": [3.4, 4.0, 4.6, 5.2],
                  "u1": [0.40, 0.35, 0.30, 0.25], "u2": [0.20, 0.21, 0.22, 0.23],
                  "u1_err": [0.02, 0.02, 0.03, 0.03], "u2_err": [0.05, 0.05, 0.05, 0.05]})


def test_ld_table_maps_onto_channels_by_overlap():
    tab = _ld_table()
    out = ld_priors(tab, [3.0, 4.0], [4.0, 5.0])
    # channel 3-4: 0.4 of row 1 (2.9-3.4) and 0.6 of row 2; channel 4-5: 0.6 row 3, 0.4 row 4
    assert out["u1"][0]["normal"] == pytest.approx([0.4 * 0.40 + 0.6 * 0.35, 0.02])
    assert out["u1"][1]["normal"] == pytest.approx([0.6 * 0.30 + 0.4 * 0.25, 0.03])
    fixed = ld_priors(tab, [3.0], [4.0], kind="fixed")
    assert fixed == {"u1": [pytest.approx(0.37)], "u2": [pytest.approx(0.206)]}
    tab.remove_columns(["u1_err", "u2_err"])
    assert ld_priors(tab, [3.0], [4.0], kind="normal", sigma=0.1)["u2"][0]["normal"][1] == 0.1
    with pytest.raises(ValueError, match="need u.*_err columns in the table or sigma"):
        ld_priors(tab, [3.0], [4.0], kind="normal")
    with pytest.raises(ValueError, match=r"channel 0 \(2.0000-3.0000 micron\) is not covered"):
        ld_priors(tab, [2.0], [3.0])
    with pytest.raises(ValueError, match="missing column"):
        read_ld_table(tab[["wave_lo", "wave_hi"]])


def test_fit_channels_takes_a_limb_darkening_table(tmp_path):
    from tsocontainer.registry import StepKeywordError, get_step

    rng = np.random.default_rng(5)
    t = T0 + np.linspace(-0.12, 0.12, 200)
    u1 = [0.37, 0.28]
    flux = np.array([batman_lc(t, u=(u, 0.21)) for u in u1]) + rng.normal(0, 1e-3, (2, t.size))
    lc = LightCurves(t, flux, np.full(flux.shape, 1e-3), [3.0, 4.0], [4.0, 5.0])
    path = tmp_path / "ld.ecsv"
    _ld_table().write(path)
    fits = fit_channels(lc, {k: v for k, v in GEOM.items() if k not in ("u1", "u2")},
                        channel_priors=str(path), sampler={**QUICK, "seed": 5})
    assert fits[0].priors["u1"] == "normal(0.37, 0.02)" and fits[1].priors["u2"].startswith("normal(0.2")
    assert fits[0].status["u1"] == "free"
    assert all(within(r, "depth", 0.01) for r in fits)
    spec = get_step("fit_channels")
    spec.check_kwargs({"channel_priors": str(path)})
    with pytest.raises(StepKeywordError, match="no such file"):
        spec.check_kwargs({"channel_priors": str(tmp_path / "missing.ecsv")})


def test_exotic_ld_from_a_custom_stellar_model():
    pytest.importorskip("exotic_ld")
    wl = np.linspace(5000.0, 60000.0, 300)             # Angstrom
    mus = np.linspace(1.0, 0.05, 40)
    # a star whose intensity follows the quadratic law with u = (0.4 - 0.04 lambda, 0.2)
    u1 = 0.4 - 0.04 * wl / 1e4
    inten = 1 - u1[:, None] * (1 - mus) - 0.2 * (1 - mus) ** 2
    stellar = {"wavelengths": wl, "mus": mus, "intensities": inten * 1e10,
               "throughput": (wl, np.ones_like(wl))}
    tab = exotic_ld_table([2.0, 4.0], [2.2, 4.2], teff=5000, logg=4.5, mh=0.0, mode="custom",
                          ld_model="custom", stellar=stellar)
    # flat throughput: the mean law over the band (u1 linear in lambda: its mid value)
    assert np.allclose(tab["u1"], [0.4 - 0.04 * 2.1, 0.4 - 0.04 * 4.1], atol=2e-3)
    assert np.allclose(tab["u2"], 0.2, atol=2e-3)
    assert ld_priors(tab, [2.0], [2.2], kind="fixed")["u1"][0] == pytest.approx(0.316, abs=2e-3)
    with pytest.raises(ValueError, match="not found"):
        exotic_ld_table([2.0], [2.2], teff=5000, logg=4.5, mh=0.0, mode="JWST_NIRSpec_Prism",
                        ld_data_path="/nonexistent/exotic_ld_data")
