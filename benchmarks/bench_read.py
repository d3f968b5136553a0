"""Peak memory and time of reading a 2-segment 500x256x2048 SOSS visit (~1 GB SCI).

Usage: python benchmarks/bench_read.py [--nint 500] [--nseg 2] [--keep DIR]

The files are written first (in a child process, not measured), then read in a
fresh child process whose peak RSS (ru_maxrss) is reported against the size of
the float32 SCI cube. Goal (issue 2): peak < 2.5 GB for 500 integrations.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

WRITE = r"""
import sys, numpy as np
from astropy.io import fits
out, nint, nseg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ny, nx = 256, 2048
rng = np.random.default_rng(0)
bounds = np.linspace(0, nint, nseg + 1).round().astype(int)
for s in range(nseg):
    a, b = bounds[s], bounds[s + 1]
    n = b - a
    ph = fits.Header({"TELESCOP": "JWST", "INSTRUME": "NIRISS", "EXP_TYPE": "NIS_SOSS",
                      "DETECTOR": "NIS", "FILTER": "CLEAR", "PUPIL": "GR700XD",
                      "SUBARRAY": "SUBSTRIP256", "TARGNAME": "BENCH", "NINTS": nint,
                      "INTSTART": int(a + 1), "INTEND": int(b), "EXSEGNUM": s + 1,
                      "EFFINTTM": 5.5, "TGROUP": 5.5, "NGROUPS": 2, "EXPSTART": 60000.0,
                      "EXPEND": 60000.0 + nint * 11 / 86400, "TARG_RA": 10.0, "TARG_DEC": 5.0})
    sci = rng.standard_normal((n, ny, nx), dtype=np.float32) + 100
    hdus = [fits.PrimaryHDU(header=ph), fits.ImageHDU(sci, name="SCI")]
    del sci
    hdus.append(fits.ImageHDU(np.ones((n, ny, nx), np.float32), name="ERR"))
    dq = np.zeros((n, ny, nx), np.uint32); dq[:, :4] = 2**31 | 1
    hdus.append(fits.ImageHDU(dq, name="DQ")); del dq
    hdus.append(fits.ImageHDU(np.full((n, ny, nx), 0.9, np.float32), name="VAR_POISSON"))
    hdus.append(fits.ImageHDU(np.full((n, ny, nx), 0.1, np.float32), name="VAR_RNOISE"))
    fits.HDUList(hdus).writeto(f"{out}/jw09999001001_04101_00001-seg{s+1:03d}_nis_rateints.fits",
                               overwrite=True)
"""

READ = r"""
import sys, time, resource, json
t0 = time.perf_counter()
import tsocontainer
t_import = time.perf_counter() - t0
from tsocontainer import read_segments
t1 = time.perf_counter()
g = read_segments(sys.argv[1] + "/*_rateints.fits")
t_read = time.perf_counter() - t1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"N": g.N, "sh": list(g.sh), "sci_bytes": g.sci.nbytes, "peak_rss": peak,
                  "read_s": t_read, "import_s": t_import,
                  "dq_bytes": g.dqs.nbytes}))
"""

IMPORT = r"""
import time, sys
t0 = time.perf_counter()
import tsocontainer
from tsocontainer import TSOGroup, read_segments
dt = time.perf_counter() - t0
print(dt, any(m.startswith("matplotlib") for m in sys.modules))
"""


def main(argv=None) -> dict:
    """Run the benchmark; print and return the numbers."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nint", type=int, default=500)
    p.add_argument("--nseg", type=int, default=2)
    p.add_argument("--keep", default=None, help="folder to write the files into (kept)")
    args = p.parse_args(argv)
    folder = args.keep or tempfile.mkdtemp(prefix="tsoc-bench-read-")
    os.makedirs(folder, exist_ok=True)
    t = time.perf_counter()
    from _common import child_env

    kw = dict(env=child_env())   # this checkout's package
    subprocess.run([sys.executable, "-P", "-c", WRITE, folder, str(args.nint), str(args.nseg)],
                   check=True, **kw)
    print(f"wrote files in {time.perf_counter() - t:.1f} s")
    imports = [float(subprocess.run([sys.executable, "-P", "-c", IMPORT], capture_output=True, text=True,
                                    check=True, **kw).stdout.split()[0]) for _ in range(3)]
    out = json.loads(subprocess.run([sys.executable, "-P", "-c", READ, folder], capture_output=True,
                                    text=True, check=True, **kw).stdout)
    out["import_s_best_of_3"] = min(imports)
    out["peak_over_sci"] = out["peak_rss"] / out["sci_bytes"]
    print(json.dumps(out, indent=1))
    print(f"read {out['N']} ints: {out['read_s']:.1f} s, peak RSS {out['peak_rss'] / 1e9:.2f} GB "
          f"= {out['peak_over_sci']:.2f} x SCI ({out['sci_bytes'] / 1e9:.2f} GB); "
          f"import {out['import_s_best_of_3']:.2f} s")
    if not args.keep:
        import shutil

        shutil.rmtree(folder)
    return out


if __name__ == "__main__":
    main()
