"""workflow.ipynb: executed top to bottom by a real Jupyter kernel, and committed clean."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from cookbook.core.settings import PROJECT_ROOT as ROOT

NOTEBOOK = ROOT / "workflow.ipynb"


@pytest.fixture
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_notebook_is_committed_without_outputs(notebook):
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    for cell in code_cells:
        # Strip with `.venv/bin/nbstripout workflow.ipynb` before committing.
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_notebook_runs_top_to_bottom(notebook, data_file, monkeypatch, tmp_path):
    # The kernel inherits this environment. The inline backend is non-interactive and
    # renders every figure to PNG, so a plot that fails to draw fails here too.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("DATA_PATH", str(data_file))
    monkeypatch.setenv("MODEL_PATH", str(ROOT / "model.joblib"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    served = [ROOT / "model.joblib", ROOT / "model.json"]
    served_before = [path.read_bytes() for path in served]

    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == 2  # the exploration and the residual figures
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert "all 1033 weights are valid service inputs" in text
    assert "DataError: Training data" in text and "column Weight must be numeric" in text
    assert "folded form: True; agrees with the estimator" in text
    saved = next(cell for cell in notebook.cells if "predictor.prediction(" in cell.source)
    assert "'height_human_readable': '6 foot, 0 inches'" in saved.outputs[-1]["data"]["text/plain"]
    assert "rows it did not learn from; served from its onnx form" in text
    imported = next(cell for cell in notebook.cells if "imported.prediction(" in cell.source)
    assert "'height_human_readable'" in imported.outputs[-1]["data"]["text/plain"]
    assert [path.read_bytes() for path in served] == served_before
    assert list(tmp_path.iterdir()) == []  # the notebook cleans its temporary folder
