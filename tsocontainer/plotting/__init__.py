"""Every diagnostic plot of the package, by what it shows.

``core`` (helpers, the frame), ``cleaning`` (flags, sky, 1/f), ``spectra`` (traces,
stability, profiles, extracted spectra), ``lightcurves`` (waterfalls, white light, RMS,
periodogram, sensitivity) and ``fits`` (data and model, posteriors, spectra of depths,
pulls). Single-panel plots take ``ax=``, multi-panel ones ``axes=``; each returns what it
drew on. Computations never plot, and plots compute only what they show.
"""
