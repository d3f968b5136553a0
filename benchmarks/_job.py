"""Entry point of one benchmark measurement in a fresh child process.

``python _job.py JSON`` runs the job named in the JSON (``job_<name>`` of ``_common`` or
``peers.<function>``) and prints ``RESULT <json>``. It sits in its own file so that
``_common`` and ``peers`` do not import each other.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402


def main(argv) -> None:
    """Run the job described by ``argv[1]`` (JSON) and print its result."""
    _common.quiet()
    spec = json.loads(argv[1])
    name = spec["job"]
    if name.startswith("peers."):
        import peers

        func = getattr(peers, name.split(".", 1)[1])
    else:
        func = getattr(_common, "job_" + name)
    result = func(spec)
    print("RESULT " + json.dumps(result, default=float))


if __name__ == "__main__":
    main(sys.argv)
