"""The `mfsearch` command: every subcommand on one parser (bad input: one line, exit 2).
search.py and analyze.py are the same `search` and `analyze` code under their own names.
One module per group: `search`, `analyze` (and `attention`), `latency`, `tools` (export,
flops, bench, data, space) and `dashboard`; each gives `add_arguments` and `run`."""
from __future__ import annotations

import argparse
import sys
import warnings

from ..common import OneLineParser
from . import analyze, dashboard, latency, search, tools

# name: (add arguments, run, one-line help, longer description or None)
COMMANDS = {
    "search": (search.add_arguments, search.run, "a FLOP-budgeted search, or a study file (--experiment)",
               search.DESCRIPTION + "\n\n" + search.EXAMPLES.replace("python search.py", "mfsearch search")),
    "analyze": (analyze.add_arguments, analyze.run, "fronts, figures and report.md of runs or a study folder",
                analyze.DESCRIPTION),
    "attention": (analyze.add_attention_arguments, analyze.run_attention, "attention maps of a trained Mobile-Former",
                  analyze.ATTENTION),
    "export": (tools.add_export_arguments, tools.run_export, "ONNX export of a run, checkpoint or model, checked",
               tools.EXPORT),
    "latency": (latency.add_arguments, latency.run, "measured latency of registered models, table and figure",
                latency.__doc__),
    "flops": (tools.add_flops_arguments, tools.run_flops, "fvcore MAdds of every registered model against the "
              "published figures", None),
    "bench": (tools.add_bench_arguments, tools.run_bench, "train-step throughput of models side by side",
              tools.BENCH),
    "data": (tools.add_data_arguments, tools.run_data, "data layer measurements: loader speed, baselines, load time",
             None),
    "space": (tools.add_space_arguments, tools.run_space, "a search space's range and sampling speed", tools.SPACE),
    "dashboard": (dashboard.add_arguments, dashboard.run, "optuna-dashboard on a search run's storage",
                  dashboard.__doc__),
}


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="mfsearch", description="FLOP-budgeted architecture search and scaling studies for "
                      "Mobile-Former; `mfsearch COMMAND --help` for each command.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_arguments, run, help_text, description) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=description or help_text,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(cmd)
        cmd.set_defaults(handler=run, prog=cmd.prog)
    return p


def main(argv: list[str] | None = None) -> int:
    # libraries' import-time deprecation notes would break the one-line error contract
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.handler(args)
