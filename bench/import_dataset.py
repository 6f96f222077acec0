"""Time a folder-per-label import into a fresh data folder.

    .venv/bin/python bench/import_dataset.py [DATASET_DIR]

Default: ../shared/datasets/grocery-produce (1,972 photos). Prints images, seconds and images/s for the
first import and for a re-import (which must add nothing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from visionloop.bootstrap import build_services
from visionloop.core.datasets import import_folder
from visionloop.core.projects import create_project
from visionloop.settings import load_settings

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "grocery-produce"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", nargs="?", default=str(DEFAULT))
    args = parser.parse_args()
    if not Path(args.dataset).is_dir():
        sys.exit(f"{args.dataset} does not exist")
    with tempfile.TemporaryDirectory() as tmp:
        svc = build_services(load_settings({"data_dir": tmp}, environ={}))
        create_project(svc, "bench")
        for run in ("first import", "re-import"):
            started = time.perf_counter()
            report = import_folder(svc, "bench", args.dataset)
            seconds = time.perf_counter() - started
            total = report.imported + report.skipped + report.failed
            print(
                f"{run:>12}: {total} images ({report.imported} imported, {report.skipped} skipped, "
                f"{report.failed} failed) in {seconds:.2f} s = {total / seconds:.0f} images/s"
            )


if __name__ == "__main__":
    main()
