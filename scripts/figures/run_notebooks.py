#!/usr/bin/env python3
"""Execute each study's plot.ipynb in its own folder, so that its figures (PNG) land beside its CSVs.

    python scripts/figures/run_notebooks.py notebooks-data/*/      # what `make figures` runs

The notebooks are not rewritten (the repository keeps them without outputs). Exits non-zero, naming
the notebook and the error, if a notebook fails or writes no PNG.
"""
import glob
import os
import sys
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402


def run(folder):
    folder = os.path.abspath(folder)
    path = os.path.join(folder, "plot.ipynb")
    notebook = nbformat.read(path, as_version=4)
    start = time.time()
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": folder}})
    try:
        client.execute()
    except CellExecutionError as error:
        print(f"FAILED {path}:\n{error}", file=sys.stderr)
        return False
    written = sorted(p for p in glob.glob(os.path.join(folder, "*.png")) if os.path.getmtime(p) >= start - 1)
    if not written:
        print(f"FAILED {path}: ran, but wrote no PNG", file=sys.stderr)
        return False
    names = ", ".join(os.path.basename(p) for p in written)
    print(f"{os.path.relpath(path)}: {len(written)} figure(s) in {time.time() - start:.1f} s: {names}")
    return True


def main(folders):
    folders = [f for f in folders if os.path.exists(os.path.join(f, "plot.ipynb"))]
    if not folders:
        print("no folder with a plot.ipynb given", file=sys.stderr)
        return 2
    failed = [f for f in folders if not run(f)]
    print(f"{len(folders) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
