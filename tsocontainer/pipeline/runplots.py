"""The diagnostic plots a run writes into ``plots/`` (one PNG per plot)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["write_plots", "plan_plots"]

log = logging.getLogger(__name__)


def plan_plots(res) -> list[tuple[str, object]]:
    """(file stem, callable(ax-or-None) -> Axes/Figure) for what the run produced.

    Parameters
    ----------
    res : RunResult
        Products of a run.

    Returns
    -------
    list of (str, callable)
    """
    plans = []
    g = res.group
    if g is not None:
        plans.append(("01_median_frame", lambda: g.plot_frame()))
        if g.history and any(s.startswith("flag:") for s in g.steps):
            plans.append(("02_flag_rate", lambda: g.plot_flag_rate()))
        if "onef" in g.corrections:
            plans.append(("03_one_over_f_psd", lambda: g.plot_one_over_f_psd()))
        if "sky" in g.corrections:
            plans.append(("04_sky", lambda: g.plot_sky()))
        if any(k.startswith("trace_order") for k in g.aux):
            plans.append(("05_trace", lambda: g.plot_trace()))
        if g.regressors:
            plans.append(("06_stability", lambda: g.plot_stability()))
    if res.spectra is not None:
        plans.append(("07_spectra_waterfall", lambda: res.spectra.plot_waterfall()))
        plans.append(("08_spectra", lambda: res.spectra.plot_spectra()))
    lc = res.lightcurves
    if lc is not None:
        plans.append(("09_white_light", lambda: lc.plot_white()))
        plans.append(("10_lightcurve_waterfall", lambda: lc.plot_waterfall()))
        if res.white is not None and res.white.model_flux is not None:
            plans.append(("11_rms_vs_bin", lambda: _white_fit_curve(res.white).plot_rms_vs_bin(
                0, model=(res.white.model_flux / np.median(res.white.model_flux))[None, :],
                title="white light, residuals of the fit")))
        if res.channels is not None:  # residuals about the fitted models
            model = res.channels.model_array(lc.time)
            plans.append(("12_sensitivity", lambda: lc.plot_sensitivity(model=model)))
    if res.white is not None:
        plans.append(("13_fit_white", lambda: res.white.plot()))
    if res.spectrum is not None:
        truth = _truth_depths(res)
        compare = {} if truth is None else {"injected (binned)": (res.spectrum.wave, truth)}
        plans.append(("14_transmission_spectrum", lambda: res.spectrum.plot(compare=compare)))
        if truth is not None:
            plans.append(("15_pulls", lambda: _pulls(res.spectrum, truth)))
    return plans


#: what to look at in each plot (shown under it in report.html)
CAPTIONS = {
    "01_median_frame": "The trace(s) should be where the mode puts them; contaminants and "
                       "bad columns show here first.",
    "02_flag_rate": "Flag rates should be flat in time; a spike marks a bad integration "
                    "(cosmic-ray shower, tilt event).",
    "03_one_over_f_psd": "After the correction the background power should be flat (white) "
                         "at low frequency.",
    "04_sky": "The sky model should follow the background's structure, not the trace.",
    "05_trace": "The fitted trace should run through the middle of the light in every order.",
    "06_stability": "Shifts and widths of a fraction of a pixel are normal; steps are tilt "
                    "events (used as regressors).",
    "07_spectra_waterfall": "The transit is a dark horizontal band; vertical stripes are bad "
                            "columns, diagonal ones drifts.",
    "08_spectra": "A smooth stellar spectrum; narrow dips that do not look like stellar "
                  "lines are artefacts.",
    "09_white_light": "The event should be clear and the baseline flat apart from a ramp.",
    "10_lightcurve_waterfall": "Every channel should show the event; a noisy channel stands "
                               "out.",
    "11_rms_vs_bin": "Binned residuals should follow 1/sqrt(N); a flattening means red noise.",
    "12_sensitivity": "Scatter over predicted error should be near 1 in every channel; "
                      "well above 1 means excess noise there.",
    "13_fit_white": "Residuals should be structureless; the title gives the depth.",
    "14_transmission_spectrum": "Depths with their errors; for a simulated visit the line is "
                                "what was injected.",
    "15_pulls": "For a simulated visit: pulls should scatter around 0 with spread 1; a common "
                "offset is a bias of the white-light geometry.",
}


def _truth_depths(res):
    """The injected depth of each channel when the run's inputs are a simulated visit."""
    from tsocontainer.sim.truth import binned_depth

    inputs = getattr(res, "inputs", None) or []
    if not inputs:
        return None
    folder = Path(inputs[0]).parent
    if not (folder / "truth.json").is_file():
        return None
    spec = res.spectrum
    edges = np.append(spec.wave_lo, spec.wave_hi[-1])
    try:
        return np.asarray(binned_depth(folder, edges), float)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("truth of %s not usable for the plots: %s", folder, exc)
        return None


def _pulls(spectrum, truth):
    from tsocontainer.plotting.fits import plot_pulls

    return plot_pulls(spectrum, truth)


def _white_fit_curve(white):
    """The points of a white-light fit as a one-channel LightCurves."""
    from tsocontainer.lightcurves.container import LightCurves

    lo = white.wave_lo if white.wave_lo is not None else np.nan
    hi = white.wave_hi if white.wave_hi is not None else np.nan
    scale = np.median(white.model_flux)  # relative flux, as the model is normalised below
    return LightCurves(white.time, white.flux[None, :] / scale, white.err[None, :] / scale,
                       [lo], [hi])


def write_plots(res, folder) -> int:
    """Draw every planned plot to ``folder/<stem>.png``; return how many were written.

    A plot that fails is logged as a warning with its error and skipped: a
    diagnostic must never lose the products of a finished run.
    """
    import matplotlib.pyplot as plt  # the user's backend is left as it is

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    before = set(plt.get_fignums())  # the user's own figures stay open
    for stem, make in plan_plots(res):
        try:
            obj = make()
            if not hasattr(obj, "savefig"):  # Axes, or an array of Axes
                import numpy as np

                obj = (obj if hasattr(obj, "figure") else np.ravel(obj)[0]).figure
            fig = obj
            path = folder / f"{stem}.png"
            tmp = folder / f".{stem}.tmp-{os.getpid()}.png"
            fig.savefig(tmp, dpi=90, bbox_inches="tight")
            os.replace(tmp, path)
            n += 1
        except Exception as exc:  # noqa: BLE001 - reported, the run's products stay
            log.warning("plot %s failed: %s: %s", stem, type(exc).__name__, exc)
        finally:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
    return n
