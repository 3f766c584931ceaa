"""The API process stays light: importing the app never loads Dask (batch engines do)."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys, time
t = time.perf_counter()
import geo_service.api.app
seconds = time.perf_counter() - t
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
print(json.dumps({"seconds": seconds, "heavy": heavy}))
"""


def test_importing_the_api_app_does_not_import_dask() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # time depends on the machine and its load: reported, not asserted
    print(f"import geo_service.api.app: {found['seconds']:.2f} s")
    assert found["heavy"] == []


def test_the_batch_read_side_does_not_import_dask() -> None:
    probe = (
        "import sys, geo_service.services.batch.runs, geo_service.services.batch.execute, "
        "geo_service.cli.main; "
        "print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
