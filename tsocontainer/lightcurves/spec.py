"""What a light-curve model contains: :class:`ModelSpec` and the parameter names it implies.

The flux model is ``A(t) * S(t) (+ GP)``: ``A`` the astrophysical light curve,
``S`` the systematics, and optionally a Gaussian process on time for what
neither describes. Its options:

astrophysics (``kind``)
    ``"transit"`` (``t0``, ``rp_rs``, limb darkening), ``"eclipse"``
    (``t_sec``, ``fp_fs``; ``rp_rs`` given) or ``"phasecurve"``: the transit
    plus a planet whose flux varies sinusoidally with orbital phase and is
    hidden behind the star during the eclipse (``fp_fs``, ``pc_amp``,
    ``pc_offset``; see :mod:`tsocontainer.lightcurves.phasecurve`).
orbit
    ``geometry`` ``"inc"`` (degrees) or ``"b"``; the eccentricity as ``ecc``,
    ``w`` (``ecc_param="ecc_w"``, fixed at 0 and 90 by default) or as
    ``secosw = sqrt(e) cos w`` and ``sesinw = sqrt(e) sin w``
    (``ecc_param="sqrt_e"``, default priors uniform in [-1, 1] each with
    ``e < 0.999``: uniform in ``e`` and ``w``), from which ``ecc`` and ``w``
    (degrees) are derived.
systematics (``systematics``)
    ``"sum"`` (the default): ``S = sum_k c_k x^k + ramp_amp exp(-(t - t[0]) /
    ramp_tau) + sum_j reg_j r_j``, every coefficient in flux units and linear
    (marginalised analytically). ``"product"``: a product of factors,
    ``S = (sum_k c_k x^k) * (1 + ramp_amp exp(-(t - t[0]) / ramp_tau)) *
    prod_j (1 + reg_j r_j)``, where ``ramp_amp`` and ``reg_j`` are relative
    (dimensionless, default priors uniform in [-1, 1]) and sampled, and the
    polynomial coefficients stay linear and marginalised. The forms agree to
    first order in the small terms; the product keeps a ramp or a regressor a
    fixed fraction of the flux when the level changes, as in detectors whose
    systematics scale with the count rate.
noise
    Gaussian with variance ``(err_scale * err)**2 + jitter**2``:
    ``err_scale=True`` fits a factor on the errors (default prior log-uniform
    in [0.1, 10]), ``jitter=True`` a white noise added in quadrature; both may
    be used. ``gp="matern32"`` or ``"sho"`` adds a celerite2 Gaussian process
    on time (``gp_sigma`` in flux units, ``gp_rho`` in days, and for the SHO
    kernel ``gp_q``, fixed at 1/sqrt(2) unless given a prior); see
    :mod:`tsocontainer.lightcurves.gp`. It needs the optional extra ``gp``
    (``pip install tsocontainer[gp]``).
"""
from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass

from tsocontainer._util import check_option

__all__ = ["ModelSpec", "KINDS", "LD_LAWS", "GEOMETRIES", "SYSTEMATICS", "ECC_PARAMS", "GP_KERNELS",
           "event_time_name", "orbit_names"]

KINDS = ("transit", "eclipse", "phasecurve")
LD_LAWS = ("linear", "quadratic", "nonlinear")
GEOMETRIES = ("inc", "b")
SYSTEMATICS = ("sum", "product")
ECC_PARAMS = ("ecc_w", "sqrt_e")
GP_KERNELS = ("matern32", "sho")


@dataclass
class ModelSpec:
    """What the light-curve model contains (see the module docstring).

    Parameters
    ----------
    kind : str
        ``"transit"``, ``"eclipse"`` or ``"phasecurve"``.
    limb_darkening : str
        ``"linear"``, ``"quadratic"`` or ``"nonlinear"`` (transit and phase
        curve). Coefficients ``u1..`` fixed or with a prior; for
        linear/quadratic, when no ``u`` is given, Kipping's ``q1, q2`` are
        free with uniform priors.
    geometry : str
        Impact parametrisation: ``"inc"`` (degrees) or ``"b"``.
    poly : int
        Degree of the polynomial in time (0 = a constant level).
    ramp : bool
        Add an exponential ramp (``ramp_amp``, ``ramp_tau`` in days; default
        ``ramp_tau`` prior log-uniform from one cadence to a quarter of the
        span of the data, ``RAMP_TAU_SPAN``; ``{"invuniform": [lo, hi]}`` makes
        it flat in the decay rate).
    regressors : tuple of str
        Names of regressors of the light curves (``reg_<name>``). A name
        ending in ``?`` (e.g. ``"tilt?"``) is optional: used when the light
        curves have it and it is not constant, skipped otherwise.
    jitter : bool
        Fit a white-noise jitter added in quadrature to the errors.
    marginalize : bool
        Marginalise linear coefficients analytically.
    exp_time : float
        Integration duration (days) over which the model is averaged when
        ``supersample > 1`` (batman's supersampling).
    supersample : int
        Number of sub-exposure points per integration (1: none).
    err_scale : bool
        Fit a factor ``err_scale`` on the errors.
    systematics : str
        ``"sum"`` or ``"product"`` of the systematics terms.
    ecc_param : str
        ``"ecc_w"`` or ``"sqrt_e"`` (sample ``secosw``, ``sesinw``).
    gp : str, optional
        ``"matern32"`` or ``"sho"``: a celerite2 Gaussian process on time.

    Raises
    ------
    ValueError
        On an unknown option, or ``gp`` without celerite2 installed.

    Examples
    --------
    >>> ModelSpec(kind="phasecurve", systematics="product", err_scale=True).kind
    'phasecurve'
    >>> ModelSpec.coerce({"ecc_param": "sqrt_e"}).ecc_param
    'sqrt_e'
    """

    kind: str = "transit"
    limb_darkening: str = "quadratic"
    geometry: str = "inc"
    poly: int = 1
    ramp: bool = False
    regressors: tuple = ()
    jitter: bool = False
    marginalize: bool = True
    exp_time: float = 0.0
    supersample: int = 1
    err_scale: bool = False
    systematics: str = "sum"
    ecc_param: str = "ecc_w"
    gp: str | None = None

    def __post_init__(self):
        check_option(self.kind, KINDS, "kind")
        check_option(self.limb_darkening, LD_LAWS, "limb_darkening")
        check_option(self.geometry, GEOMETRIES, "geometry")
        check_option(self.systematics, SYSTEMATICS, "systematics")
        check_option(self.ecc_param, ECC_PARAMS, "ecc_param")
        if int(self.poly) != self.poly or self.poly < 0:
            raise ValueError(f"poly must be a non-negative integer, got {self.poly!r}")
        self.poly = int(self.poly)
        if isinstance(self.regressors, str):
            self.regressors = (self.regressors,)
        self.regressors = tuple(str(r) for r in self.regressors)
        if int(self.supersample) != self.supersample or self.supersample < 1:
            raise ValueError(f"supersample must be a positive integer, got {self.supersample!r}")
        self.supersample = int(self.supersample)
        if self.supersample > 1 and not self.exp_time > 0:
            raise ValueError("supersample > 1 needs exp_time > 0 (days)")
        for name in ("ramp", "jitter", "marginalize", "err_scale"):
            v = getattr(self, name)
            if v not in (True, False):  # bool, or 0/1
                raise ValueError(f"{name} must be true or false, got {v!r}")
            setattr(self, name, bool(v))
        if self.gp is not None:
            check_option(self.gp, GP_KERNELS, "gp")
            if importlib.util.find_spec("celerite2") is None:
                raise ValueError(f"gp={self.gp!r} needs celerite2, which is not installed: "
                                 "pip install 'tsocontainer[gp]' (or celerite2)")

    @classmethod
    def coerce(cls, obj) -> "ModelSpec":
        """Return a ModelSpec from None, a dict of its fields, or a ModelSpec.

        Parameters
        ----------
        obj : None, dict or ModelSpec

        Returns
        -------
        ModelSpec

        Raises
        ------
        ValueError
            On unknown fields or values.

        Examples
        --------
        >>> ModelSpec.coerce({"poly": 2}).poly
        2
        """
        from tsocontainer._util import coerce_dataclass

        return coerce_dataclass(cls, obj, "model")

    def to_dict(self) -> dict:
        """Plain-dict form (JSON-ready).

        Examples
        --------
        >>> ModelSpec().to_dict()["systematics"]
        'sum'
        """
        d = asdict(self)
        d["regressors"] = list(self.regressors)
        return d


def event_time_name(spec: ModelSpec) -> str:
    """``"t_sec"`` for eclipses, else ``"t0"`` (transits and phase curves).

    Examples
    --------
    >>> event_time_name(ModelSpec(kind="eclipse"))
    't_sec'
    """
    return "t_sec" if spec.kind == "eclipse" else "t0"


def orbit_names(spec: ModelSpec) -> list:
    """The orbit's parameter names under ``spec``: event time, period, ``a_rs``,
    ``inc`` or ``b``, and ``ecc``/``w`` or ``secosw``/``sesinw``.

    Examples
    --------
    >>> orbit_names(ModelSpec(ecc_param="sqrt_e", geometry="b"))
    ['t0', 'per', 'a_rs', 'b', 'secosw', 'sesinw']
    """
    ecc = ["secosw", "sesinw"] if spec.ecc_param == "sqrt_e" else ["ecc", "w"]
    return [event_time_name(spec), "per", "a_rs", spec.geometry] + ecc
