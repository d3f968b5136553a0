"""The SOSS scene built from the real SUBSTRIP256 frame (tsocontainer.sim.soss_scene)."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.sim.soss_truth import box_depths
from tsocontainer.sim.soss_scene import (FRAME_PWCPOS, ONEF_RMS, pixel_owners,
                                         simulate_soss_scene, split_frame)

QUIET = {"poisson": False, "read": False}


@pytest.fixture(scope="module")
def split():
    return split_frame()


def _frame():
    from tsocontainer.modes._tables import load_npz

    return np.asarray(load_npz(f"soss_substrip256_median_pwcpos{FRAME_PWCPOS}.npz", "frame"),
                      float)


def test_split_conserves_the_frame(split):
    frame = _frame()
    live = ~split.refmask & ~split.dead
    total = split.star + split.background + split.contaminants + split.hot
    assert np.allclose(total[live], frame[live], rtol=0, atol=1e-9)   # flux in = flux out
    assert np.all(total[~live] == 0)
    # dead pixels: those of the real frame below -1 DN/s (a working pixel sees >= 2.5 DN/s)
    assert 100 < split.dead.sum() < 400 and np.all(frame[split.dead] < -1)
    # the zodiacal light is the model scaled under the frame on each side of its step
    # (2nd percentile of the smoothed ratio far from the traces): 0.50 and 0.61
    assert len(split.scales) == 2 and 0.3 < split.scales[0] < split.scales[1] < 1.0
    assert abs(split.background[100, 300] / split.background[100, 1200] - 0.62) < 0.1
    # the field star's order-0 image near column 1940, rows 140-170, ~2500 DN/s
    blob = split.contaminants[135:175, 1925:1955]
    assert blob.sum() > 1500 and split.contaminants.sum() < 1.2 * blob.sum()
    # the star keeps its wings: far below order 1 (rows 0-10, columns 1300-1700) the
    # frame is ~2x the zodiacal model there, and the star part is positive
    assert np.median(split.star[0:10, 1300:1700]) > 0.5 * np.median(split.background[0:10,
                                                                                      1300:1700])


def test_pixels_belong_to_their_nearest_order(split):
    from tsocontainer.modes import Mode, get_mode

    mode = Mode(get_mode("soss"), subarray="SUBSTRIP256")
    header = {"PWCPOS": FRAME_PWCPOS}
    x = np.arange(100, 2000, 50)
    for order in (1, 2):
        y = np.rint(mode.trace_guess(order, x, header=header)).astype(int)
        on = (y >= 0) & (y < 252)
        assert np.all(split.owner[y[on], x[on]] == order)
        wave = mode.wavelength(order, x[on], header=header)
        # the pixel takes the wavelength of the nearest trace point: within ~1 column
        # of dispersion (< 1.2 nm per column in order 1, 0.6 nm in order 2)
        assert np.allclose(split.wave[y[on], x[on]], wave, atol=0.0015)
    owner, column, wave, dist = pixel_owners()
    assert owner.shape == column.shape == wave.shape == dist.shape == (256, 2048)
    assert set(np.unique(owner)) == {1, 2, 3} and np.all(np.isfinite(wave))


def test_the_whole_psf_transits():
    vis = simulate_soss_scene(12, None, columns=(1100, 1240), noise=QUIET, seed=2)
    data = np.asarray(vis.models[0].data, float)
    a = vis.truth_arrays()
    static = a["BACKGROUND"] + a["CONTAMINANTS"] + a["HOT"]
    star = a["MODEL"].sum(axis=0)
    wl = np.asarray(a["SHIFTS"]["white_lc"])
    i_in, i_out = int(np.argmin(wl)), 0
    ratio = (data[i_in] - static) / np.where(star > 1, star, np.nan)   # lit pixels
    assert np.allclose(data[i_out], star + static, rtol=1e-6, atol=1e-4)   # out of transit
    col = 60   # column 1160: order 1 near row 43
    core = ratio[40:46, col]
    wing = ratio[90:110, col]     # 50-65 pixels from order 1: its wings and order 2's
    far = ratio[0:8, col]         # below order 1: its far wings
    assert np.isfinite(core).all() and np.isfinite(far).sum() >= 6
    far = far[np.isfinite(far)]
    assert np.all(core < 0.985) and np.all(far < 0.985)   # ~2 % transit everywhere
    # the same depth as the core where the pixel belongs to order 1 at the same column
    assert np.allclose(far, core.mean(), atol=1e-6)
    # order-2 pixels transit with their own (shorter) wavelength's depth
    wing = wing[np.isfinite(wing)]
    assert wing.size >= 15 and np.all(wing < 0.985)
    lc = a["LIGHTCURVE"][0, i_in, col]
    assert abs(core.mean() - lc) < 1e-6


def test_scene_files_and_truth(tmp_path):
    from tsocontainer.group import read_segments

    vis = simulate_soss_scene(6, tmp_path, nseg=2, columns=(600, 856), seed=3)
    assert len(vis.files) == 2
    g = read_segments(vis.files, progress=False)
    assert g.N == 6 and g.sh == (256, 256)
    assert g.geometry.x_offset == 600 and g.geometry.header == {"PWCPOS": FRAME_PWCPOS}
    assert np.all(g.dqs.static[-4:, :] != 0)                # top reference rows flagged
    t = vis.truth
    assert t["nint"] == 6 and t["orders"] == [1, 2, 3] and t["instrument"]["crop"] == [600, 856]
    # the truth of the main simulator's contract still works (noise limit, arrays)
    lim = vis.noise_limit(wave_bins=2)
    assert np.all(np.isfinite(lim)) and np.all(lim > 0)
    white = box_depths(tmp_path)
    assert white.shape == (1,) and abs(white[0] - t["white_light_depth_ppm"]) < 1e-6
    # photon + read noise only: (data - expected) / err has unit variance out of transit
    m = vis.truth_arrays()
    expected = m["MODEL"].sum(axis=0) + m["BACKGROUND"] + m["CONTAMINANTS"] + m["HOT"]
    z = (np.asarray(g.sci[0], float) - expected) / np.sqrt(np.asarray(g.var[0], float))
    live = (m["REFPIX"] == 0) & (expected > 1)      # (the frame's few negative pixels clip)
    assert abs(np.std(z[live]) - 1) < 0.02                  # 64000 pixels: 0.3 % sampling error
    assert m["ONE_OVER_F"].shape == (6, 256) and not m["ONE_OVER_F"].any()


def test_one_over_f_is_column_correlated():
    # out of transit, without photon and read noise, the data are the split frame plus
    # the injected 1/f offsets, one per column
    vis = simulate_soss_scene(3, None, noise=dict(QUIET, one_over_f=ONEF_RMS), seed=4)
    a = vis.truth_arrays()
    oot = np.asarray(a["SHIFTS"]["white_lc"]) > 1 - 1e-6
    assert oot.sum() == 2
    data = np.asarray(vis.models[0].data, float)[oot]
    expected = a["MODEL"].sum(axis=0) + a["BACKGROUND"] + a["CONTAMINANTS"] + a["HOT"]
    onef = a["ONE_OVER_F"]
    assert onef.shape == (3, 2048)
    live = (a["REFPIX"] == 0) & (expected >= 0)
    assert np.allclose((data - expected[None])[:, live],
                       np.broadcast_to(onef[oot][:, None, :], data.shape)[:, live], atol=1e-3)
    # rms over 3 x 2048 columns: 1.4 DN/s within 15 % (the 1/f spectrum has few
    # independent low-frequency modes: the sample rms scatters more than white noise's)
    assert abs(np.sqrt(np.mean(onef ** 2)) / ONEF_RMS - 1) < 0.15
    # column-correlated: neighbouring columns are alike (1/f spectrum), unlike white noise
    c = np.corrcoef(onef[:, :-1].ravel(), onef[:, 1:].ravel())[0, 1]
    assert c > 0.3


def test_options_are_checked():
    with pytest.raises(ValueError, match="unknown option"):
        simulate_soss_scene(4, None, colour="blue")
    with pytest.raises(ValueError, match="unknown noise"):
        simulate_soss_scene(4, None, noise={"pink": 1})
    with pytest.raises(ValueError, match="columns"):
        simulate_soss_scene(4, None, columns=(10, 20))
    with pytest.raises(ValueError, match="nint >= nseg"):
        simulate_soss_scene(2, None, nseg=3)
    with pytest.raises(ValueError, match="SUBSTRIP256"):
        split_frame(np.ones((96, 2048)))


def test_box_depths_count_the_light_the_extraction_keeps():
    # 4 columns; order 1 (rows 3-5, 100 DN/s, 1000 ppm) and order 2's light (rows 6-7,
    # 10 DN/s, 5000 ppm) share the box rows 2-8. Column 0's order-1 pixels transit with
    # 3000 ppm (its wavelength); a decontaminated extraction masked that column.
    from tsocontainer.sim.soss_truth import box_depths_from, box_light_curves

    ny, nx = 10, 4
    owner = np.zeros((ny, nx), np.int8)
    owner[3:6], owner[6:8] = 1, 2
    star = np.where(owner == 1, 100.0, np.where(owner == 2, 10.0, 0.0))
    pixwave = np.where(owner == 1, 1.0, np.where(owner == 2, 2.0, np.nan))
    pixwave[3:6, 0] = 1.5
    arrays = {"MODEL": np.array([star * (owner == o) for o in (1, 2, 3)]), "OWNER": owner,
              "PIXWAVE": pixwave, "REFPIX": np.zeros((ny, nx), np.uint8),
              "WAVE": np.array([[1.0, 1.01, 1.02, 1.03], [2.0] * 4, [3.0] * 4]),
              "PIXCOLUMN": np.tile(np.arange(nx), (ny, 1)),
              "LIGHTCURVE": np.ones((3, 2, nx))}
    truth = {"depth_spectrum": {"wave_um": [1.0, 1.5, 2.0], "depth_ppm": [1000.0, 3000.0, 5000.0]}}
    centre, hw, edges = np.full(nx, 5.0), 3.5, [0.9, 1.1]
    everything = box_depths_from(arrays, truth, edges, centre, hw, 1)[0]
    mine = box_depths_from(arrays, truth, edges, centre, hw, 1, owners=1)[0]
    kept = np.array([False, True, True, True])
    kept_mine = box_depths_from(arrays, truth, edges, centre, hw, 1, owners=1, columns=kept)[0]
    # all light: (3 x 1000 x 300 + 3000 x 300 + 4 x 5000 x 20) / (4 x 300 + 4 x 20)
    assert everything == pytest.approx((900e3 + 900e3 + 400e3) / 1280, rel=1e-12)
    assert mine == pytest.approx((900e3 + 900e3) / 1200, rel=1e-12)       # order 1 only
    assert kept_mine == pytest.approx(1000.0, rel=1e-12)                 # and column 0 dropped
    # the light curves of the box hold the same light: order 1, kept columns
    from tsocontainer.sim.truth import SimulatedVisit

    vis = SimulatedVisit([], dict(truth, instrument={"crop": [0, nx]}), _arrays=arrays)
    lc = box_light_curves(vis, edges, centre, hw, owners=1, columns=kept)
    assert lc.shape == (1, 2) and np.allclose(lc, 900.0)
    with pytest.raises(ValueError, match="columns must be boolean"):
        box_depths_from(arrays, truth, edges, centre, hw, 1, columns=[True, False])

