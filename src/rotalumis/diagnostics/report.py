"""One self-contained HTML page from a results directory (what ``rotalumis report`` writes).

A results directory, as written by ``rotalumis run --out DIR``, holds ``empirical.npz`` (the
posterior, with engine metadata), ``summary.json`` (model, engine, seed, observations) and,
after ``--report``, ``address_structure.json`` (the trace types, see
:class:`~.addresses.AddressStructure`). The page has four sections: run summary and
posterior table, diagnostics with warnings (R-hat above 1.01, low ESS, large Pareto ``k``),
all plots, and the address structure (trace-type table, address dictionary, graphs); a
surrogate's fidelity saved in the directory (``surrogate_fidelity.json``, see
:mod:`.surrogate_fidelity`) adds a fifth. Every
image is embedded as a base64 ``data:`` URI, so the page is one file that opens anywhere;
the graphs' DOT, SVG and PNG files are also kept in ``DIR/address_graphs/``. A directory
that also holds ``calibration.json`` (``rotalumis calibrate --out DIR``) gets a fifth
section: the network's calibration across observations.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rotalumis.core.checks import loads_json
from rotalumis.core.errors import DatasetError
from rotalumis.core.files import write_text_atomic

from . import _html as H

if TYPE_CHECKING:
    from rotalumis.data import ChainInfo
from .address_graph import GraphvizError, render_dot, to_dot
from .addresses import AddressStructure, call_site
from .calibration import CALIBRATION_FILE, CalibrationResult
from .chain_plots import (
    plot_autocorrelation,
    plot_log_prob,
    plot_pair,
    plot_rhat_evolution,
    plot_traces,
    scalar_variables,
)
from .convergence import (
    convergence_table,
    convergence_warnings,
    importance_diagnostics,
    importance_warnings,
)
from .inference_data import chain_lengths, distinct_variables, log_probs, to_inference_data
from .optimization_report import optimization_section
from .plots import plot_posterior
from .surrogate_fidelity import fidelity_section

__all__ = ["GRAPHS_DIR", "REPORT_FILE", "STRUCTURE_FILE", "save_address_structure", "write_report"]

log = logging.getLogger(__name__)

STRUCTURE_FILE = "address_structure.json"
REPORT_FILE = "report.html"
GRAPHS_DIR = "address_graphs"


def save_address_structure(result: Any, directory: str | os.PathLike[str]) -> Path | None:
    """Write the address structure of ``result``'s kept traces to ``DIR/address_structure.json``.

    Returns:
        The file written, or ``None`` when ``result`` kept no traces.
    """
    if not result.traces or any(t is None for t in result.traces):
        return None
    path = Path(directory) / STRUCTURE_FILE
    AddressStructure.from_result(result).save(path)
    return path


def _read_summary(path: Path) -> dict[str, Any]:
    """``summary.json`` of a results directory (empty when absent)."""
    if not path.is_file():
        return {}
    try:
        meta = loads_json(path.read_bytes(), str(path))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path} is not a run summary (not a JSON object)")
    return meta


def _load_structure(directory: Path, result: Any) -> AddressStructure | None:
    path = directory / STRUCTURE_FILE
    if path.is_file():
        return AddressStructure.load(path)
    if result.traces and all(t is not None for t in result.traces):
        return AddressStructure.from_result(result)  # traces saved in empirical.npz
    return None


def _summary_section(result: Any, meta: Mapping[str, Any], mcmc: dict[str, Any]) -> str:
    info = [
        ("model", meta.get("model", result.name)),
        ("engine", meta.get("engine", _engine(result))),
        ("samples", len(result)),
        ("seed", meta.get("seed")),
        ("observations", json.dumps(meta.get("observe", {}), default=str)),
    ]
    for c, ch in enumerate(_chains(result)):
        rate = ch.acceptance_rate
        info.append((f"chain {c}", f"{ch.length} samples, acceptance rate {rate:.3f}"))
    body = H.table(["", "value"], info, text_cols=(0, 1))
    rows = []
    for label, s in result.summary().items():
        ess = mcmc.get(label, {}).get("ess_bulk", s.get("ess"))
        cells = [s.get(k) for k in ("mean", "std", "q05", "q50", "q95")]
        rows.append([label, *(_num(c) for c in cells), _num(ess)])
    body += "<h3>Posterior</h3>" + H.table(
        ["quantity", "mean", "std", "5%", "50%", "95%", "ESS"], rows
    )
    return body


def _engine(result: Any) -> str:
    """The engine that made ``result`` (``"?"``: unknown)."""
    return result.info.engine if result.info is not None else "?"


def _chains(result: Any) -> tuple[ChainInfo, ...]:
    """The MCMC chains of ``result`` (empty for other engines)."""
    return result.info.chains if result.info is not None else ()


def _num(x: Any) -> Any:
    try:
        return float(x) if np.ndim(x) == 0 else str(np.round(np.asarray(x, dtype=float), 4))
    except (TypeError, ValueError):
        return str(x)


_MCMC_HEADERS = ["variable", "mean", "sd", "R-hat", "ESS bulk", "ESS tail", "MCSE mean", "MCSE sd"]


def _diagnostics(result: Any, idata: Any) -> tuple[str, list[str], dict[str, Any]]:
    """HTML, warnings and the MCMC convergence table (empty for non-MCMC results)."""
    chains = _chains(result)
    if chains and idata is not None:
        table = convergence_table(idata, var_names=distinct_variables(idata))
        warns = convergence_warnings(table, num_chains=len(chain_lengths(result)))
        keys = ("mean", "sd", "rhat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd")
        mcmc_rows = [[k, *(row[s] for s in keys)] for k, row in table.items()]
        body = (
            f"<p>{len(chains)} chain(s); rank-normalised split R-hat, bulk/tail ESS and MCSE "
            "computed by ArviZ.</p>"
            + H.warnings_box(warns, "All variables: R-hat ≤ 1.01 and ESS above threshold.")
            + H.table(_MCMC_HEADERS, mcmc_rows)
        )
        return body, warns, table
    diag = importance_diagnostics(result)
    weighted = bool(np.isfinite(diag["pareto_k"]))
    warns = importance_warnings(diag) if weighted else []
    rows: list[tuple[str, Any]] = [
        ("samples", int(diag["num_samples"])),
        ("non-zero weights", int(diag["nonzero"])),
        ("effective sample size (ESS)", diag["ess"]),
        ("ESS / samples", diag["ess_fraction"]),
        ("Pareto k (PSIS, ArviZ)", diag["pareto_k"]),
    ]
    note = (
        "Importance weights: ESS of the normalised weights; Pareto k of their upper tail "
        "(k ≤ 0.7 reliable)."
        if weighted
        else "Equally weighted independent samples: the ESS is the number of samples."
    )
    body = f"<p>{H.esc(note)}</p>" + H.warnings_box(warns, "The weights look healthy.")
    return body + H.table(["quantity", "value"], rows), warns, {}


def _plots_section(result: Any, idata: Any, truth: Mapping[str, float] | None, title: str) -> str:
    parts = [
        H.img(H.fig_png(plot_posterior, result, title=title, truth=truth), "posterior",
              "Posterior of each named latent and the result (weighted histogram, density)")
    ]  # fmt: skip
    plots: list[tuple[str, Any, str]] = []
    if idata is not None:
        if scalar_variables(idata):
            plots += [
                ("traces", lambda p: plot_traces(idata, path=p), "MCMC trace plots"),
                ("autocorrelation", lambda p: plot_autocorrelation(idata, path=p),
                 "Autocorrelation of each chain"),
                ("rhat", lambda p: plot_rhat_evolution(idata, path=p),
                 "R-hat on the first k draws of every chain"),
            ]  # fmt: skip
        if log_probs(result) is not None:
            plots.append(("log-prob", lambda p: plot_log_prob(result, path=p),
                          "Joint log density over iterations"))  # fmt: skip
    plots.append(("pair", lambda p: plot_pair(result, path=p), "Pair plot of the named latents"))
    for alt, make, caption in plots:
        try:
            parts.append(H.img(H.fig_png(lambda path, m=make: m(path)), alt, caption))
        except ValueError as exc:  # e.g. a pair plot with a single variable
            log.info("plot %s skipped: %s", alt, exc)
    return "".join(parts)


def _address_section(structure: AddressStructure | None, graphs_dir: Path, top: int) -> str:
    if structure is None:
        return (
            "<p>Not recorded: the engine kept no traces. Run <code>rotalumis run ... "
            "--report</code> (or keep_traces=True) to see the address structure.</p>"
        )
    ids = structure.address_ids()
    types = structure.trace_types()
    rows = [
        (r.rank, r.count, r.frequency, len(r.addresses), " → ".join(ids[a] for a in r.addresses))
        for r in types[:15]
    ]
    body = (
        f"<p>{structure.num_traces} traces, {len(types)} trace type(s) (distinct sequences "
        "of addresses); frequencies are shares of the posterior weight.</p>"
        "<h3>Trace types</h3>"
        + H.table(["rank", "traces", "frequency", "sites", "addresses"], rows, text_cols=(4,))
    )
    graphs = [
        ("top_types", structure.graph(top=top), f"{min(top, len(types))} most frequent types"),
        ("call_sites", structure.graph(collapse=True), "all traces, instances merged by call site"),
    ]
    for stem, graph, what in graphs:
        dot = to_dot(graph, f"Address graph: {what}")
        try:
            files = render_dot(dot, graphs_dir / stem)
            body += f"<h3>Graph: {H.esc(what)}</h3>" + H.img(
                files["png"].read_bytes(), f"address graph {stem}",
                "Nodes: addresses with the share of traces visiting them; edges: transition "
                "probabilities",
            )  # fmt: skip
        except GraphvizError as exc:
            body += H.warnings_box([str(exc)], "")
        body += H.details("DOT source", f"<pre>{H.esc(dot)}</pre>")
    sites = structure.sites
    site_ids = structure.address_ids(collapse=True)
    rows2 = [
        (i, s.distribution, s.name or "", s.kind, site_ids[call_site(a)], a)
        for a, i in ids.items()
        for s in (sites[a],)
    ]
    body += "<h3>Address dictionary</h3>" + H.table(
        ["id", "distribution", "name", "kind", "call site", "address"], rows2,
        text_cols=(0, 1, 2, 3, 4), mono_cols=(5,),
    )  # fmt: skip
    return body


def _headline(warns: list[str]) -> str:
    if not warns:
        return H.warnings_box([], "No diagnostic warnings.")
    return (
        f'<div class="warn"><strong>{len(warns)} diagnostic warning(s)</strong>: see '
        '<a href="#diagnostics">Diagnostics</a>.</div>'
    )


def _check_same_run(directory: Path, meta: Mapping[str, Any], result: Any) -> None:
    """``rotalumis run`` stamps its files with one run id: files of two runs do not mix."""
    a, b = meta.get("run_id"), result.metadata.get("run_id")
    if a is not None and b is not None and a != b:
        raise DatasetError(
            f"{directory} mixes the files of two runs (summary.json of run {a}, "
            f"empirical.npz of run {b}); run `rotalumis run ... --out {directory}` again"
        )


def _check_truth(truth: Mapping[str, float] | None, result: Any) -> None:
    known = [*result.latent_names, "result"]
    unknown = sorted(set(truth or ()) - set(known))
    if unknown:
        raise ValueError(
            f"truth given for {', '.join(map(repr, unknown))}, which this result does not "
            f"have (named latents: {', '.join(result.latent_names) or 'none'}; 'result' is "
            "the model's return value)"
        )


def write_report(
    directory: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    truth: Mapping[str, float] | None = None,
    top: int = 5,
) -> Path:
    """Write the HTML report of a results directory.

    Args:
        directory: A directory written by ``rotalumis run --out``.
        out: The HTML file (default ``DIR/report.html``).
        truth: Known values by latent name, drawn on the posterior plot.
        top: The address graph covers this many most frequent trace types.

    Returns:
        The path of the HTML file.

    A black-box optimization saved in the directory (``BlackBoxResult.save(DIR)``, the file
    ``optimization.json``) adds an "Optimization" section; a directory holding only that
    gets a page with that section alone.

    Raises:
        FileNotFoundError: naming the missing ``empirical.npz``.
        DatasetError: if ``empirical.npz`` or ``summary.json`` is unreadable, or the
            directory mixes the files of two runs.
        ValueError: for a ``truth`` name that is not a latent of the result.
    """
    from rotalumis.data import Empirical

    directory = Path(directory)
    npz = directory / "empirical.npz"
    optimization = optimization_section(directory)
    if not npz.is_file() and optimization is not None:
        html = H.page("rotalumis report: optimization", "black-box optimization", [optimization])
        return _write(html, out, directory)
    if not npz.is_file():
        raise FileNotFoundError(f"{npz} not found: {directory} is not a `rotalumis run` output")
    result = Empirical.load(npz)
    meta = _read_summary(directory / "summary.json")
    _check_same_run(directory, meta, result)
    _check_truth(truth, result)
    model = meta.get("model", result.name or "model")
    engine = meta.get("engine", _engine(result))
    idata = to_inference_data(result) if _chains(result) else None
    diag_html, warns, table = _diagnostics(result, idata)
    structure = _load_structure(directory, result)
    sections = [
        ("summary", "Summary", _headline(warns) + _summary_section(result, meta, table)),
        ("diagnostics", "Diagnostics", diag_html),
        ("plots", "Plots", _plots_section(result, idata, truth, f"{model}: {engine} posterior")),
        ("addresses", "Address structure",
         _address_section(structure, directory / GRAPHS_DIR, top)),
    ]  # fmt: skip
    if (directory / CALIBRATION_FILE).is_file():
        from .calibration_plots import calibration_section

        calibration = CalibrationResult.load(directory / CALIBRATION_FILE)
        sections.append(("calibration", "Calibration", calibration_section(calibration)))
    if optimization is not None:
        sections.append(optimization)
    fidelity = fidelity_section(directory)
    if fidelity is not None:
        sections.append(fidelity)
    html = H.page(f"rotalumis report: {model}", f"{engine} · {len(result)} samples", sections)
    return _write(html, out, directory)


def _write(html: str, out: str | os.PathLike[str] | None, directory: Path) -> Path:
    target = Path(out) if out is not None else directory / REPORT_FILE
    write_text_atomic(target, html)
    return target
