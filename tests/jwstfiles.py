"""Write small JWST-format segment files with stdatamodels for reader tests.

These are not the simulator: just exact, known arrays in the real layout so
that reading can be checked value by value.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: header configuration of one test file per supported mode
MODE_HEADERS = {
    "soss": dict(instrument="NIRISS", exp_type="NIS_SOSS", detector="NIS", filter="CLEAR",
                 pupil="GR700XD", subarray="SUBSTRIP256", suffix="nis", shape=(16, 40)),
    "nirspec": dict(instrument="NIRSPEC", exp_type="NRS_BRIGHTOBJ", detector="NRS1",
                    filter="CLEAR", grating="PRISM", subarray="SUB512", suffix="nrs1",
                    shape=(8, 32)),
    "nircam": dict(instrument="NIRCAM", exp_type="NRC_TSGRISM", detector="NRCALONG",
                   filter="F322W2", pupil="GRISMR", subarray="SUBGRISM64", suffix="nrcalong",
                   shape=(12, 48)),
    "miri": dict(instrument="MIRI", exp_type="MIR_LRS-SLITLESS", detector="MIRIMAGE",
                 filter="P750L", subarray="SLITLESSPRISM", suffix="mirimage", shape=(40, 10)),
}

INT_TIMES_DTYPE = [("integration_number", "i4"), ("int_start_MJD_UTC", "f8"),
                   ("int_mid_MJD_UTC", "f8"), ("int_end_MJD_UTC", "f8"),
                   ("int_start_BJD_TDB", "f8"), ("int_mid_BJD_TDB", "f8"),
                   ("int_end_BJD_TDB", "f8")]

T0_MJD = 60000.25
DT_DAYS = 30.0 / 86400


def make_visit(folder, mode="soss", nint=10, nseg=2, seed=1, int_times=True, kind="rateints",
               header_overrides=None, root="jw09999001001_04101_00001"):
    """Write ``nseg`` segments of a visit; return (paths, arrays dict).

    ``header_overrides`` maps segment index -> {meta attribute path: value}.
    """
    from stdatamodels.jwst.datamodels import CubeModel

    cfg = MODE_HEADERS[mode]
    ny, nx = cfg["shape"]
    rng = np.random.default_rng(seed)
    sci = rng.normal(100, 5, (nint, ny, nx)).astype(np.float32)
    vp = rng.uniform(0.5, 2, (nint, ny, nx)).astype(np.float32)
    vr = rng.uniform(0.1, 0.3, (nint, ny, nx)).astype(np.float32)
    dq = np.zeros((nint, ny, nx), np.uint32)
    dq[:, 0, :] = 1 | 2**31  # a static 'reference pixel' row
    dq[rng.integers(0, nint, 7), rng.integers(0, ny, 7), rng.integers(0, nx, 7)] |= 4
    mid = T0_MJD + (np.arange(nint) + 0.5) * DT_DAYS
    bounds = np.linspace(0, nint, nseg + 1).round().astype(int)
    paths = []
    folder = Path(folder)
    for s in range(nseg):
        a, b = bounds[s], bounds[s + 1]
        m = CubeModel(data=sci[a:b], err=np.sqrt(vp[a:b] + vr[a:b]), dq=dq[a:b],
                      var_poisson=vp[a:b], var_rnoise=vr[a:b])
        m.meta.instrument.name = cfg["instrument"]
        m.meta.instrument.detector = cfg["detector"]
        m.meta.instrument.filter = cfg["filter"]
        if "pupil" in cfg:
            m.meta.instrument.pupil = cfg["pupil"]
        if "grating" in cfg:
            m.meta.instrument.grating = cfg["grating"]
        m.meta.exposure.type = cfg["exp_type"]
        m.meta.subarray.name = cfg["subarray"]
        m.meta.target.catalog_name = "WASP-TEST"
        m.meta.target.ra, m.meta.target.dec = 150.0, -20.0
        m.meta.exposure.nints = nint
        m.meta.exposure.integration_start = int(a + 1)
        m.meta.exposure.integration_end = int(b)
        m.meta.exposure.segment_number = s + 1
        m.meta.exposure.segment_total = nseg
        m.meta.exposure.start_time = T0_MJD
        m.meta.exposure.end_time = T0_MJD + nint * DT_DAYS
        m.meta.exposure.integration_time = 29.0
        m.meta.exposure.group_time = 1.0
        m.meta.exposure.ngroups = 29
        m.meta.visit.tsovisit = True
        for key, value in (header_overrides or {}).get(s, {}).items():
            obj = m.meta
            parts = key.split(".")
            for p in parts[:-1]:
                obj = getattr(obj, p)
            setattr(obj, parts[-1], value)
        if int_times:
            tab = np.zeros(b - a, dtype=INT_TIMES_DTYPE)
            tab["integration_number"] = np.arange(a + 1, b + 1)
            tab["int_mid_MJD_UTC"] = mid[a:b]
            tab["int_start_MJD_UTC"] = mid[a:b] - DT_DAYS / 2
            tab["int_end_MJD_UTC"] = mid[a:b] + DT_DAYS / 2
            tab["int_mid_BJD_TDB"] = mid[a:b] + 0.0031
            tab["int_start_BJD_TDB"] = tab["int_mid_BJD_TDB"] - DT_DAYS / 2
            tab["int_end_BJD_TDB"] = tab["int_mid_BJD_TDB"] + DT_DAYS / 2
            m.int_times = tab
        path = folder / f"{root}-seg{s + 1:03d}_{cfg['suffix']}_{kind}.fits"
        m.save(path)
        m.close()
        paths.append(path)
    return paths, dict(sci=sci, var=vp + vr, dq=dq, bjd_mid=mid + 0.0031)
