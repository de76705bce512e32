"""Where a benchmark writes its raw figures: bench/<name>/results[-<variant>]-<date>-<kind>.json.

<kind> is "quick" or "full", so a smoke run never takes the name of a documented full run,
and an existing file is never overwritten: a second run on the same day gets "-2", "-3"...
docs/benchmarks.md names the file behind each of its tables.
"""

import datetime
from pathlib import Path


def record_path(directory, quick, variant=""):
    """A new results file in directory (a Path) for a quick or a full run."""
    stem = "results" + (f"-{variant}" if variant else "")
    stem += f"-{datetime.date.today().isoformat()}-{'quick' if quick else 'full'}"
    path = Path(directory) / f"{stem}.json"
    n = 2
    while path.exists():
        path = Path(directory) / f"{stem}-{n}.json"
        n += 1
    return path
