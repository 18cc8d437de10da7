"""examples/quickstart.ipynb runs top to bottom (nbclient, a fresh ipykernel, CPU).

Its MNIST-scale images come from small files in the real IDX format written here, so the test
does not depend on the real data; the notebook reads them through ``$SEFL_DATA_DIR`` as a user's
would.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient

from benchmark.tasks.mnist_source import write_mnist_split

NOTEBOOK = Path(__file__).parents[1] / "examples" / "quickstart.ipynb"
CELL_TIMEOUT_S = 120  # a hung cell fails the test instead of stalling CI


def test_quickstart_runs_top_to_bottom(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    write_mnist_split(tmp_path / "data" / "mnist", "test",
                      rng.integers(0, 256, (210, 28, 28)), rng.integers(0, 10, 210))
    monkeypatch.setenv("SEFL_DATA_DIR", str(tmp_path / "data"))  # the kernel inherits it
    # One OpenMP thread in the kernel: with two, beside other tests on a loaded 2-core machine,
    # the equivariance cell took 32 s instead of 3 (measured) and CI hit the cell timeout.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure

    outputs = {cell.id: cell.outputs for cell in notebook.cells if cell.cell_type == "code"}
    assert all(o.output_type != "error" for cell in outputs.values() for o in cell)
    text = "".join(o.get("text", "") for o in outputs["layers-check"])
    assert float(text.split("relative difference:")[1]) < 1e-5  # the layer is equivariant
    assert "image/gif" in outputs["grid"][-1]["data"]  # the animation is shown
