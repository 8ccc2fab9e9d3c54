"""The report's section on a black-box optimization saved in the results directory.

:meth:`~rotalumis.optimize.BlackBoxResult.save` writes ``DIR/optimization.json``; when it is
there, :func:`~.report.write_report` adds this section: the method, budget and calls, the
answer, the objective against simulator calls with the parameter trajectories (the
result's own ``plot``), and the method's settings.
"""

from __future__ import annotations

from pathlib import Path

from rotalumis.optimize.blackbox.result import RESULT_FILE, BlackBoxResult

from . import _html as H

__all__ = ["OPTIMIZATION_FILE", "optimization_section"]

OPTIMIZATION_FILE = RESULT_FILE


def optimization_section(directory: Path) -> tuple[str, str, str] | None:
    """``(id, title, html)`` of the section, or ``None`` when the directory holds no result.

    Raises:
        ValueError: if ``DIR/optimization.json`` exists but is not a saved result.
    """
    path = directory / OPTIMIZATION_FILE
    if not path.is_file():
        return None
    result = BlackBoxResult.load(path)
    finite = [v for v in result.history_objective.tolist() if v == v]
    info = [
        ("method", result.method),
        ("simulator calls", f"{result.calls} of a budget of {result.budget}"),
        ("failed calls (skipped)", result.failed_calls),
        ("steps", result.steps),
        ("seed", result.seed),
        ("last step's mean objective", finite[-1] if finite else None),
    ]
    body = H.table(["", "value"], info, text_cols=(0, 1))
    body += "<h3>Answer</h3>" + H.table(
        ["parameter", "start", "answer"],
        [
            (name, float(result.history_psi[0, i]) if result.steps else None, value)
            for i, (name, value) in enumerate(result.params.items())
        ],
    )
    body += H.img(
        H.fig_png(result.plot),
        "optimization history",
        "Mean objective of each step's simulator calls (a noisy estimate near that step's "
        "answer) and the parameters, against simulator calls",
    )
    settings = [(k, str(v)) for k, v in result.config.items()]
    body += H.details("Settings", H.table(["setting", "value"], settings, text_cols=(0, 1)))
    return ("optimization", "Optimization", body)
