"""Tests of tsocontainer.lightcurves.container: binning, cleaning, diagnostics, ECSV, plots."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tsocontainer.lightcurves.container import LightCurves
from tsocontainer.lightcurves.tools import bin_edges

T0 = 2460000.5


def _transit(t, rp=0.1, t0=T0, a=10.0, inc=87.0, u=(0.3, 0.2)):
    import batman

    p = batman.TransitParams()
    p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = t0, 3.0, rp, a, inc, 0.0, 90.0
    p.u, p.limb_dark = list(u), "quadratic"
    return batman.TransitModel(p, t).light_curve(p)


def _spectra(nint=300, nwave=400, seed=0, noise=True, decreasing=False):
    """Per-integration spectra of a transit: (time, wave, flux, var)."""
    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-0.12, 0.12, nint)
    wave = np.linspace(2.9, 5.1, nwave)
    if decreasing:
        wave = wave[::-1]
    star = 1e4 * np.exp(-0.5 * ((wave - 4.0) / 0.8) ** 2) + 2e3
    flux = star[None, :] * _transit(t)[:, None]
    var = np.broadcast_to(star, flux.shape).copy()  # photon noise, DN/s^2 units
    if noise:
        flux = flux + rng.normal(size=flux.shape) * np.sqrt(var)
    return t, wave, flux, var


def _lc(nchan=30, nint=300, sigma=1e-3, seed=0, red=0.0, tau=20.0, transit=True):
    """Normalised light curves with white (and optional AR(1) red) noise."""
    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-0.12, 0.12, nint)
    model = _transit(t) if transit else np.ones(nint)
    noise = rng.normal(0, sigma, (nchan, nint))
    if red:
        phi = np.exp(-1.0 / tau)
        eps = rng.normal(0, red * np.sqrt(1 - phi**2), (nchan, nint))
        r = np.zeros((nchan, nint))
        r[:, 0] = rng.normal(0, red, nchan)
        for i in range(1, nint):
            r[:, i] = phi * r[:, i - 1] + eps[:, i]
        noise = noise + r
    edges = np.linspace(3, 5, nchan + 1)
    return LightCurves(t, model[None, :] + noise, np.full((nchan, nint), sigma), edges[:-1], edges[1:])


# ------------------------------------------------------------------ binning
def test_bin_edges_forms():
    wave = np.linspace(3.0, 5.0, 401)
    e = bin_edges(wave, 30)
    assert e.size == 31 and np.allclose(np.diff(e), np.diff(e)[0], rtol=1e-12, atol=0)
    e = bin_edges(wave, {"R": 100})
    centre, width = np.sqrt(e[:-1] * e[1:]), np.diff(e)
    # constant R by construction: lambda_c / dlambda = R exactly except the last channel
    assert np.allclose(centre[:-1] / width[:-1], 100, rtol=1e-9)
    assert 50 <= centre[-1] / width[-1] <= 100
    e = bin_edges(wave, {"pixels": 10})
    assert e.size == 41
    e = bin_edges(wave, [3.2, 3.4, 4.0])
    assert np.array_equal(e, [3.2, 3.4, 4.0])
    for bad in ({"R": 100, "pixels": 3}, {"resolution": 100}, 0, 2.5, [3.0, 2.0], {"R": -1}):
        with pytest.raises(ValueError):
            bin_edges(wave, bad)


def test_from_spectra_conserves_flux_and_counts_pixels():
    t, wave, flux, var = _spectra(noise=True)
    lc = LightCurves.from_spectra(t, wave, flux, var, bins=30)
    assert lc.nchan == 30 and lc.nint == t.size and not lc.clipped.any()
    # every pixel lies in exactly one channel: flux and variance in = out (rounding only)
    assert np.allclose(lc.flux.sum(axis=0), flux.sum(axis=1), rtol=1e-12, atol=0)
    assert np.allclose((lc.err**2).sum(axis=0), var.sum(axis=1), rtol=1e-12, atol=0)
    pix = LightCurves.from_spectra(t, wave, flux, var, bins={"pixels": 10})
    assert pix.nchan == 40
    assert np.allclose(pix.flux[0], flux[:, :10].sum(axis=1), rtol=1e-12, atol=0)
    explicit = LightCurves.from_spectra(t, wave, flux, var, bins=[3.0, 3.5, 4.5])
    assert np.array_equal(explicit.wave_lo, [3.0, 3.5]) and np.array_equal(explicit.wave_hi, [3.5, 4.5])
    inside = (wave >= 3.5) & (wave < 4.5)
    assert np.allclose(explicit.flux[1], flux[:, inside].sum(axis=1), rtol=1e-12, atol=0)


def test_from_spectra_decreasing_wavelength_is_the_same():
    t, wave, flux, var = _spectra(decreasing=False)
    a = LightCurves.from_spectra(t, wave, flux, var, bins={"R": 50})
    b = LightCurves.from_spectra(t, wave[::-1], flux[:, ::-1], var[:, ::-1], bins={"R": 50})
    assert np.array_equal(a.wave_lo, b.wave_lo)
    assert np.allclose(a.flux, b.flux, rtol=1e-12, atol=0)  # only the summation order differs


def test_from_spectra_masked_pixel_is_rescaled_not_a_dip():
    t, wave, flux, var = _spectra(noise=False)
    mask = np.ones(flux.shape, bool)
    mask[100, 50] = False  # one "cosmic ray"
    flux_bad = flux.copy()
    flux_bad[100, 50] = 1e9
    ref = LightCurves.from_spectra(t, wave, flux, var, bins=10)
    lc = LightCurves.from_spectra(t, wave, flux_bad, var, bins=10, mask=mask)
    # noise-free spectra keep their shape, so the template scaling restores the sum exactly
    assert np.allclose(lc.flux, ref.flux, rtol=1e-12, atol=0)
    assert lc.history[-1]["summary"]["scaled_cells"] == 1
    # a channel with no good pixel at an integration is clipped, not invented
    mask[:, :] = True
    mask[7, wave < ref.wave_hi[0]] = False
    lc = LightCurves.from_spectra(t, wave, flux, var, bins=10, mask=mask)
    assert lc.clipped[0, 7] and lc.clipped.sum() == 1


def test_constructor_rejects_bad_inputs():
    t = T0 + np.arange(5.0)
    good = dict(time=t, flux=np.ones((1, 5)), err=np.full((1, 5), 0.1), wave_lo=[1.0], wave_hi=[2.0])
    LightCurves(**good)
    with pytest.raises(ValueError, match="non-finite"):
        LightCurves(**{**good, "flux": np.array([[1, np.nan, 1, 1, 1.0]])})
    with pytest.raises(ValueError, match="zero, negative"):
        LightCurves(**{**good, "err": np.array([[0.1, 0.0, 0.1, 0.1, 0.1]])})
    with pytest.raises(ValueError, match="increasing"):
        LightCurves(**{**good, "time": t[::-1]})
    with pytest.raises(ValueError, match="unknown argument"):
        LightCurves(**good, regresors={})
    with pytest.raises(ValueError, match="wave_hi > wave_lo"):
        LightCurves(**{**good, "wave_hi": [0.5]})
    # a NaN that is marked clipped is accepted
    LightCurves(**{**good, "flux": np.array([[1, np.nan, 1, 1, 1.0]])},
                clipped=np.array([[0, 1, 0, 0, 0]], bool))


def test_white_is_the_sum_of_channels_and_selects_range():
    t, wave, flux, var = _spectra()
    lc = LightCurves.from_spectra(t, wave, flux, var, bins=20)
    one = LightCurves.from_spectra(t, wave, flux, var, bins=1)
    w = lc.white()
    assert np.allclose(w.flux, one.flux, rtol=1e-12, atol=0)
    assert np.allclose(w.err, one.err, rtol=1e-12, atol=0)
    part = lc.white((3.5, 4.5))
    assert part.wave_lo[0] >= 3.5 and part.wave_hi[0] <= 4.5
    with pytest.raises(ValueError, match="no channel"):
        lc.white((10, 11))


def test_white_clips_an_integration_where_a_channel_is_clipped():
    """A clipped channel point is not filled from the other channels' shares: with a
    chromatic transit the shares change in transit (here the blue channel is 3 % deep
    and the red one 1 %), so a fill from the visit-median shares would put a wrong
    white point (by ~1 % of the blue share) into the white light."""
    time = np.linspace(-0.1, 0.1, 41)
    intr = np.abs(time) < 0.04
    flux = np.vstack([1 - 0.03 * intr, 1 - 0.01 * intr])
    clipped = np.zeros(flux.shape, bool)
    clipped[0, 20] = True  # mid-transit, blue channel
    lc = LightCurves(time, flux, np.full(flux.shape, 1e-4), [1.0, 2.0], [2.0, 3.0],
                     clipped=clipped)
    w = lc.white()
    assert w.clipped[0, 20] and w.clipped.sum() == 1
    # every other integration is the plain sum
    keep = ~w.clipped[0]
    assert np.allclose(w.flux[0, keep], flux.sum(axis=0)[keep], rtol=1e-12, atol=0)


def test_normalize_by_window_or_mask():
    lc = _lc(nchan=3)
    lc.flux *= np.array([[10.0], [20.0], [30.0]])
    lc.err *= np.array([[10.0], [20.0], [30.0]])
    a = lc.copy().normalize((T0 - 0.06, T0 + 0.06))
    oot = (lc.time < T0 - 0.06) | (lc.time > T0 + 0.06)
    b = lc.copy().normalize(oot)
    assert np.array_equal(a.flux, b.flux) and np.array_equal(a.oot, oot)
    assert np.allclose(np.median(a.flux[:, oot], axis=1), 1.0, rtol=1e-14, atol=0)
    assert np.allclose(a.norm, [10, 20, 30], rtol=0.01)  # OOT median of noisy 1.0 x scale
    assert a.steps == ["normalize"] and a.unit == ""
    with pytest.raises(ValueError):
        lc.copy().normalize(np.ones(3, bool))


def test_clip_outliers_finds_injected_spikes_not_the_transit():
    lc = _lc(nchan=30, seed=3)
    where = [(0, 10), (5, 150), (12, 151), (29, 299), (17, 0)]
    for c, i in where:
        lc.flux[c, i] += 20e-3  # 20 sigma
    lc.clip_outliers(sigma=5, window=15)
    # a 5-sigma two-sided false alarm has p = 6e-7 per point, 0.005 expected in 9000 points
    assert sorted(map(tuple, np.argwhere(lc.clipped))) == sorted(where)
    assert lc.meta["NCLIPPED"] == 5 and lc.history[-1]["summary"]["clipped"] == 5
    lc.unclip()
    assert not lc.clipped.any()
    with pytest.raises(ValueError):
        lc.clip_outliers(window=4)


def test_dark_edge_is_left_out():
    # the last 40 of 400 pixels get 0.1 % of the peak flux (PRISM beyond 5.4 um):
    # with the default 1 % threshold they are not binned; with 0 they are
    t, wave, flux, var = _spectra(noise=False)
    flux[:, -40:] *= 1e-3 / flux[:, -40:].max() * flux.max()
    lc = LightCurves.from_spectra(t, wave, flux, var, bins=10)
    # noiseless and all good: the channels hold exactly the bright 360 pixels
    assert np.allclose(lc.flux.sum(0), flux[:, :360].sum(1), rtol=1e-12)
    lc0 = LightCurves.from_spectra(t, wave, flux, var, bins=10, min_flux=0)
    assert np.allclose(lc0.flux.sum(0), flux.sum(1), rtol=1e-12)


def test_clip_outliers_keeps_high_snr_ingress():
    # 100 integrations over 3.8 h, 40 ppm noise, a 2 % transit: ingress lasts a
    # few integrations, far shorter than the 15-point running median, whose lag
    # there is 100x the noise. Dividing by the common shape removes it; a clean
    # light curve then has ~0.006 expected false alarms at 5 sigma in 2000 points.
    rng = np.random.default_rng(8)
    t = T0 + np.linspace(-0.08, 0.08, 100)
    shape = _transit(t, rp=0.145, a=11.4, inc=88.5)
    depth_scale = 1 + 0.02 * np.linspace(-1, 1, 20)[:, None]  # channel-to-channel depths
    flux = 1 - depth_scale * (1 - shape[None, :]) + rng.normal(0, 40e-6, (20, 100))
    lc = LightCurves(t, flux, np.full(flux.shape, 40e-6), np.arange(20.0), np.arange(20.0) + 1)
    lc.flux[3, 50] += 2e-3  # one 50-sigma spike at mid-transit
    lc.clip_outliers(sigma=5.0)
    assert sorted(map(tuple, np.argwhere(lc.clipped))) == [(3, 50)]


def test_clip_outliers_keeps_chromatic_limb_darkening():
    # 10 SOSS channels (0.85-2.83 um), 100 integrations, 40 ppm noise, a 2 % transit whose
    # limb darkening changes with wavelength (u1 0.33 -> 0.12): the bluest channel's
    # ingress and bottom differ from the common shape by up to 1170 ppm, 30x the noise. Over
    # 20 noise draws (20000 points) the clipper divided by the common shape clipped 2412
    # points (12 %, ingress, egress and mid-transit of the edge channels); the same noise
    # without a transit has 9 clips. Allowed: 50 (0.25 %); the fit of the shared bases
    # clips 12. Injected 50-sigma spikes are still found.
    from tsocontainer.sim.astro import limb_darkening

    t = T0 + np.linspace(-0.13, 0.13, 100)
    edges = np.linspace(0.85, 2.83, 11)
    u1, u2 = limb_darkening(0.5 * (edges[1:] + edges[:-1]))
    model = np.array([_transit(t, rp=0.1455, a=11.4, inc=88.5, u=(a, b)) for a, b in zip(u1, u2)])
    clipped = 0
    for seed in range(20):
        flux = model + np.random.default_rng(seed).normal(0, 40e-6, model.shape)
        lc = LightCurves(t, flux, np.full(flux.shape, 40e-6), edges[:-1], edges[1:])
        clipped += int(lc.clip_outliers(sigma=5.0).clipped.sum())
    assert clipped <= 50, clipped
    flux = model + np.random.default_rng(0).normal(0, 40e-6, model.shape)
    spikes = [(0, 33), (0, 50), (9, 66), (5, 20)]   # ingress, mid-transit, egress, out of transit
    for c, i in spikes:
        flux[c, i] += 2e-3
    lc = LightCurves(t, flux, np.full(flux.shape, 40e-6), edges[:-1], edges[1:])
    found = set(map(tuple, np.argwhere(lc.clip_outliers(sigma=5.0).clipped).tolist()))
    assert set(spikes) <= found and len(found) <= len(spikes) + 2, sorted(found)


def test_clip_outliers_on_noiseless_light_curves_keeps_the_transit():
    # noiseless transits (errors 300 ppm) whose depth and limb darkening change from channel
    # to channel: the residual scatter about the shared shapes is ~0, and a threshold of 5x
    # it clipped 1008 of 2400 points, 992 of them in transit. The threshold's floor (half
    # the noise the errors predict) keeps every point; a 10-sigma spike is still found.
    from tsocontainer.sim.astro import limb_darkening

    t = T0 + np.linspace(-0.12, 0.12, 300)
    u1, u2 = limb_darkening(np.linspace(0.9, 2.7, 8))
    flux = np.array([_transit(t, rp=0.10 + 0.002 * k, a=11.4, inc=88.5, u=(a, b))
                     for k, (a, b) in enumerate(zip(u1, u2))])
    lc = LightCurves(t, flux, np.full(flux.shape, 3e-4), np.arange(8.0), np.arange(8.0) + 1)
    assert not lc.clip_outliers(sigma=5.0).clipped.any()
    flux[4, 150] += 3e-3
    lc = LightCurves(t, flux, np.full(flux.shape, 3e-4), np.arange(8.0), np.arange(8.0) + 1)
    assert np.argwhere(lc.clip_outliers(sigma=5.0).clipped).tolist() == [[4, 150]]


# -------------------------------------------------------------- diagnostics
def test_sensitivity_white_noise_is_one():
    ratio = _lc(nchan=30, nint=400, seed=11).normalize((T0 - 0.06, T0 + 0.06)).sensitivity()
    # each channel's std from ~200 OOT points has 5 % scatter; the median of 30 about 1.2 %
    assert 0.95 <= np.median(ratio) <= 1.05


def test_red_noise_flagged_by_sensitivity_and_rms_vs_bin():
    red = _lc(nchan=30, nint=400, seed=5, red=1e-3, tau=20).normalize((T0 - 0.06, T0 + 0.06))
    ratio = red.sensitivity()
    # AR(1) noise as strong as the white noise: sqrt(2) = 1.41 minus what the linear trend absorbs
    assert np.median(ratio) > 1.2
    white = _lc(nchan=1, nint=3000, seed=6, transit=False)
    red1 = _lc(nchan=1, nint=3000, seed=6, red=1e-3, tau=20, transit=False)
    sizes, rms, expected = white.rms_vs_bin(0, sizes=[1, 5, 20, 50, 100])
    # M = 3000/N >= 30 bins: the RMS of M means scatters by 1/sqrt(2M) <= 13 %; 0.6-1.4 is > 3 sigma
    assert np.all((rms / expected > 0.6) & (rms / expected < 1.4))
    sizes, rms, expected = red1.rms_vs_bin(0, sizes=[1, 5, 20, 50, 100])
    # correlated noise with tau = 20 points: binned RMS ~ sqrt(1 + 2 tau) / sqrt(2) ~ 4.5x white
    assert np.all(rms[2:] / expected[2:] > 2.0)


def test_psd_finds_an_injected_period():
    lc = _lc(nchan=1, nint=2000, seed=2, transit=False)
    freq_true = 48.0  # cycles per day (30 minutes)
    lc.flux[0] += 1e-3 * np.sin(2 * np.pi * freq_true * (lc.time - T0))
    freq, power = lc.psd(0)
    # frequency grid step (Nyquist/n) is ~0.4/day; allow two steps
    assert abs(freq[np.argmax(power)] - freq_true) < 2 * (freq[1] - freq[0])


# ---------------------------------------------------------------------- io
def test_ecsv_round_trip_is_exact(tmp_path):
    t, wave, flux, var = _spectra()
    lc = LightCurves.from_spectra(t, wave, flux, var, bins={"R": 40}, unit="DN/s",
                                  regressors={"xshift": np.sin(np.arange(t.size))})
    lc.clipped[2, 5] = True
    lc.normalize((T0 - 0.06, T0 + 0.06)).clip_outliers()
    path = tmp_path / "lc.ecsv"
    assert lc.write(path) == str(path)
    back = LightCurves.read(path)
    for name in ("time", "flux", "err", "wave_lo", "wave_hi", "clipped", "norm", "oot"):
        assert np.array_equal(getattr(back, name), getattr(lc, name)), name
    assert np.array_equal(back.regressors["xshift"], lc.regressors["xshift"])
    assert back.history == lc.history and back.meta == lc.meta and back.unit == lc.unit
    with pytest.raises(FileExistsError):
        lc.write(path)
    lc.write(path, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["lc.ecsv"]  # no temporary file left
    raw = LightCurves.from_spectra(t, wave, flux, var, bins=3, unit="DN/s")
    raw.write(tmp_path / "raw.ecsv")
    assert LightCurves.read(tmp_path / "raw.ecsv").unit == "DN/s"


def test_import_does_not_load_matplotlib():
    code = ("import sys, tsocontainer.lightcurves.container, tsocontainer.lightcurves.fit; "
            "print('matplotlib' in sys.modules, 'emcee' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------- plots
def test_plots_return_axes_with_labels():
    import matplotlib.axes

    lc = _lc(nchan=5).normalize((T0 - 0.06, T0 + 0.06))
    for fn, xlabel in ((lc.plot_waterfall, "time"), (lc.plot_white, "time"),
                       (lc.plot_rms_vs_bin, "bin size"), (lc.plot_psd, "frequency"),
                       (lc.plot_sensitivity, "wavelength")):
        ax = fn()
        assert isinstance(ax, matplotlib.axes.Axes)
        assert ax.get_xlabel().startswith(xlabel) and ax.get_ylabel()
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert lc.plot_white(ax=ax, nbin=10) is ax
