"""One-page HTML report of a run directory: every diagnostic plot and the recipe.

The page is self-contained (plots embedded as base64 PNG) so it can be mailed
or archived on its own, and is rebuilt from the files of a run directory by
``tsocontainer report DIR``.
"""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

__all__ = ["build_report"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:520px}
figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:.85em;color:#555}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:.2em .6em}
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(path.stem.replace("_", " "))
    return (f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _table(rows: list[tuple]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def _summary_rows(run_dir: Path) -> list[tuple]:
    rows = []
    fw = run_dir / "fit_white.json"
    if fw.is_file():
        try:
            doc = json.loads(fw.read_text())
        except json.JSONDecodeError:
            doc = {}
        params = doc.get("params", doc)
        for name, val in params.items():
            if isinstance(val, dict) and "median" in val:
                rows.append((f"white {name}", f"{val['median']:.6g} "
                             f"+{val.get('err_hi', float('nan')):.2g} "
                             f"-{val.get('err_lo', float('nan')):.2g}"))
    ts = run_dir / "transmission_spectrum.ecsv"
    if ts.is_file():
        from astropy.table import Table

        t = Table.read(ts, format="ascii.ecsv")
        rows.append(("spectrum channels", len(t)))
    return rows


def build_report(run_dir, title: str | None = None, out=None) -> str:
    """Write ``report.html`` for a run directory.

    Parameters
    ----------
    run_dir : str or path-like
        Folder with ``plots/*.png`` and, when present, ``recipe.yaml``,
        ``fit_white.json``, ``transmission_spectrum.ecsv`` and ``run.log``.
    title : str, optional
        Page title (default: the folder name).
    out : str or path-like, optional
        Output file (default ``run_dir/report.html``), written atomically.

    Returns
    -------
    str
        Path of the report.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` does not exist.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    title = title or f"tsocontainer run: {run_dir.resolve().name}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    rows = _summary_rows(run_dir)
    if rows:
        parts.append("<h2>Summary</h2>" + _table(rows))
    plots = sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").is_dir() else []
    parts.append("<h2>Diagnostics</h2>")
    parts.append("".join(_img(p) for p in plots) if plots else "<p>No plots in this run.</p>")
    recipe = run_dir / "recipe.yaml"
    if recipe.is_file():
        parts.append(f"<h2>Recipe</h2><pre>{html.escape(recipe.read_text())}</pre>")
    log = run_dir / "run.log"
    if log.is_file():
        text = log.read_text()[-20000:]
        parts.append(f"<h2>Log (last part)</h2><pre>{html.escape(text)}</pre>")
    parts.append("</body></html>")
    out = Path(out) if out else run_dir / "report.html"
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, out)
    return str(out)
