"""Re-run the example notebooks and keep only the outputs nbval checks (`make notebooks`).

`make test` runs `pytest --nbval-lax notebooks`: every cell must run without error, and the
cells marked `# NBVAL_CHECK_OUTPUT` must print what is saved here. Other outputs are dropped,
so a notebook opens clean (a saved widget view without its kernel shows only an error).
"""

import sys

import nbformat
from nbclient import NotebookClient

for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": "."}}
    ).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "NBVAL_CHECK_OUTPUT" not in cell.source:
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print("executed", path)
