"""The run manifest: what each stage of a run was made from, and the files it made.

``manifest.json`` in a run directory records, per stage, a *key* (a hash of the stage's
inputs: the input files' fingerprints or the previous stage's key, the recipe section of
the stage, the priors for the fits) and the fingerprint of each output file. A stage is
done when its key is unchanged and every output file still has the recorded fingerprint;
otherwise it runs again, and so does every later stage (their keys contain its key).

A stage commits in three moves, so that a kill at any moment leaves either the old
state or the new one, never a mix the next run would trust:

1. its products are written into a staging folder of the run directory;
2. the manifest is rewritten (atomically) with the stage's new key and the
   fingerprints of the staged files;
3. the staged files are renamed into place.

After a kill between 2 and 3 the files on disk do not match the manifest, so the stage
runs again; after a kill before 2 the manifest still describes the old files. Staging
folders and temporary files left by a killed run are removed when the next run starts.

Fingerprints: the SHA-256 of a file's content up to 256 MB, above that its size and
modification time (renames keep the time), which a truncated or rewritten file changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from tsocontainer._util import write_text_atomic

__all__ = ["fingerprint", "digest", "Manifest", "clean_stale_temporaries"]

_HASH_LIMIT = 256 * 2**20


def fingerprint(path) -> str:
    """Content hash (files up to 256 MB) or size + mtime of ``path``; '' if missing.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_text("x")
    >>> fingerprint(p)[:12]
    'sha256:2d711'
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return ""
    if st.st_size > _HASH_LIMIT:
        return f"stat:{st.st_size}:{st.st_mtime_ns}"
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def digest(*parts) -> str:
    """A short stable hash of JSON-able ``parts`` (keys of stages).

    Examples
    --------
    >>> digest({"a": 1}, [2]) == digest({"a": 1}, [2])
    True
    """
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Manifest:
    """``manifest.json`` of a run directory: stage -> key, outputs and their fingerprints.

    Parameters
    ----------
    folder : path-like
        The run directory.
    """

    NAME = "manifest.json"

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.stages: dict = {}
        if self.path.is_file():
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                self.stages = dict(doc.get("stages", {}))
            except (OSError, ValueError, AttributeError):
                self.stages = {}   # a damaged manifest trusts nothing: every stage reruns

    def done(self, stage: str, key: str) -> bool:
        """True if ``stage`` ran with ``key`` and its outputs are as it left them."""
        rec = self.stages.get(stage)
        if not rec or rec.get("key") != key:
            return False
        for name, fp in rec.get("outputs", {}).items():
            now = fingerprint(self.folder / name)
            later = self._rewritten_by_later(stage, name)
            if now != fp and now not in later:
                return False
        return True

    def _rewritten_by_later(self, stage: str, name: str) -> set:
        """Fingerprints of ``name`` recorded by later stages built on this one."""
        out = set()
        key = self.stages.get(stage, {}).get("key")
        for rec in self.stages.values():
            if rec.get("parent") == key and name in rec.get("outputs", {}):
                out.add(rec["outputs"][name])
        return out

    def commit(self, stage: str, key: str, parent: str | None, staged: dict) -> None:
        """Record ``stage`` and move its staged files into place (see the module docstring).

        Parameters
        ----------
        stage : str
            Stage name.
        key : str
            The stage's key.
        parent : str or None
            Key of the stage it was built on.
        staged : dict of str -> Path
            Final file name (relative to the run directory) -> staged file.
        """
        outputs = {name: fingerprint(p) for name, p in staged.items()}
        self.stages[stage] = {"key": key, "parent": parent, "outputs": outputs}
        self.write()
        for name, p in staged.items():
            os.replace(p, self.folder / name)

    def record(self, stage: str, key: str, parent: str | None, staged: dict) -> None:
        """Record ``stage`` with the fingerprints of ``staged`` files, without writing the
        manifest or moving the files: the next :meth:`commit` (of a later stage that
        stages the same files) does both, so the two stages commit together.

        Parameters
        ----------
        stage, key, parent, staged
            As :meth:`commit`.
        """
        outputs = {name: fingerprint(p) for name, p in staged.items()}
        self.stages[stage] = {"key": key, "parent": parent, "outputs": outputs}

    def forget_from(self, stages) -> None:
        """Drop the records of ``stages`` (they will run again)."""
        for s in stages:
            self.stages.pop(s, None)

    def write(self) -> None:
        """Write the manifest atomically."""
        text = json.dumps({"version": 1, "stages": self.stages}, indent=1, sort_keys=True)
        write_text_atomic(self.path, text + "\n")


def clean_stale_temporaries(folder) -> list:
    """Remove staging folders and ``.<name>.tmp-<pid>`` files a killed run left behind.

    Parameters
    ----------
    folder : path-like
        The run directory.

    Returns
    -------
    list of str
        What was removed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in list(folder.iterdir()) + list((folder / "plots").glob(".*")):
        if p.name.startswith(".staging-") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(str(p))
        elif p.name.startswith(".") and ".tmp-" in p.name and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(str(p))
    return removed
