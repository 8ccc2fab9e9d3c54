"""pyprob 1.5.0 as a PPX engine: drive a simulator and report what it saw, as JSON.

Runs in the separate ``.venv-pyprob`` (pyprob pins ``flatbuffers==2.0``), never imports
rotalumis. Used by the interop tests and ``benchmarks/bench_ppx.py``::

    .venv-pyprob/bin/python pyprob_engine.py --address ipc://@sim --mode posterior \
        --num-traces 5000 --observe '{"obs0": 8, "obs1": 9}' --seed 1 --out result.json

The JSON holds, per trace, the values of the named variables (samples, observations and
tags), the log-weights, the variables of the first trace (address, name, distribution,
control, observed, tagged, value), the handshake's model and system names, and the traces
per second of the timed run (``--warmup`` traces run first, untimed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time

import pyprob
import torch


def _plain(value):
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    return float(value)


def _record(trace):
    return {name: _plain(v.value) for name, v in trace.named_variables.items()}


def _variables(trace):
    return [
        {
            "address": v.address,
            "address_base": v.address_base,
            "name": v.name,
            "distribution": None if v.distribution is None else type(v.distribution).__name__,
            "control": bool(v.control),
            "observed": bool(v.observed),
            "tagged": bool(v.tagged),
            "value": _plain(v.value),
        }
        for v in trace.variables
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--mode", choices=["prior", "posterior"], default="prior")
    parser.add_argument("--num-traces", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--observe", default="{}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-records", action="store_true", help="timing only")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    pyprob.set_verbosity(0)
    pyprob.seed(args.seed)
    observe = json.loads(args.observe)
    chatter = io.StringIO()  # pyprob prints connection banners; keep stdout clean
    with contextlib.redirect_stdout(chatter):
        model = pyprob.RemoteModel(server_address=args.address)

        def run(n, map_func):
            if args.mode == "prior":
                return model.prior(num_traces=n, map_func=map_func)
            return model.posterior(
                num_traces=n,
                inference_engine=pyprob.InferenceEngine.IMPORTANCE_SAMPLING,
                observe=observe,
                map_func=map_func,
            )

        first = run(max(args.warmup, 1), None)
        first_trace = first[0]
        map_func = (lambda t: 0) if args.no_records else _record
        start = time.perf_counter()
        empirical = run(args.num_traces, map_func)
        elapsed = time.perf_counter() - start
        records = [] if args.no_records else empirical.get_values()
        log_weights = [] if args.no_records else empirical.log_weights
        out = {
            "model_name": model._model_server.model_name,
            "system_name": model._model_server.system_name,
            "traces_per_second": args.num_traces / elapsed,
            "records": records,
            "log_weights": [float(w) for w in log_weights],
            "first_trace": _variables(first_trace),
        }
        model.close()
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
