"""``sweep``: run every missing job of one or more experiments, or (``--plan``) print what it would do."""

from __future__ import annotations

import argparse

from benchmark.cli.arguments import (
    PROFILE_NAMES,
    STORAGE_HELP,
    names,
    print_json,
    profile_options,
    profile_overrides,
    say,
)
from benchmark.config.errors import UserError


def _setups(value: str | None, experiments: list[str]) -> tuple[str, ...]:
    """``--setups`` as a tuple; by default the paper setups of the experiments (each once, in order)."""
    from benchmark.config.setups import get_setup
    from benchmark.orchestration.experiments import get_experiment

    if value is not None:
        setups = names(value, "--setups")
    else:
        setups = tuple(dict.fromkeys(s for name in experiments for s in get_experiment(name).paper_setups))
    for setup in setups:
        get_setup(setup)
    return setups


def cmd_sweep(args: argparse.Namespace) -> None:
    experiments = list(names(args.experiment, "--experiment"))
    if args.plan:  # print what the sweep would do (benchmark/orchestration/plan.py) and return
        from benchmark.orchestration.plan import format_plan, plan_sweep

        plan = plan_sweep(experiments, _setups(args.setups, experiments), seeds=args.seeds, profile=args.profile,
                          profile_overrides=profile_overrides(args)[1], storage_url=args.storage, device=args.device)
        print_json(plan.as_dict()) if args.json else print(format_plan(plan))
        return
    from benchmark.orchestration.sweep import sweep
    from benchmark.services.artifacts import describe_artifact

    report = sweep(experiments, _setups(args.setups, experiments), seeds=args.seeds, profile=args.profile,
                   profile_overrides=profile_overrides(args)[1], workers=args.workers, storage_url=args.storage,
                   launcher=args.launcher, device=args.device, max_retries=args.max_retries)
    if args.json:
        print_json(report.__dict__)
        return
    say(f"sweep {report.experiment}: {report.jobs} jobs, {report.done_before} already done, {report.ran} run now, "
        f"{len(report.failed)} failed")
    for name, count in sorted(report.artifacts_built.items()):
        say(f"  artifact {name} ({describe_artifact(name)}): trained by {count} of this sweep's jobs", "    ")
    for key, error in report.failed.items():
        say(f"  FAILED {key}: {error}", "    ")
    if report.failed:
        raise UserError(f"{len(report.failed)} job(s) failed {args.max_retries + 1} times; see the errors above")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``sweep``."""
    p = sub.add_parser("sweep", help="run every missing job of an experiment (the paper's tables and figures)")
    p.add_argument("--experiment", required=True,
                   help="table1 | table2 | table3 | table4 | fig3 | fig4, or several comma-separated (run together)")
    p.add_argument("--setups", help="comma-separated setups (default: the paper's setups of the experiment)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1)")
    p.add_argument("--workers", type=int, default=1, help="parallel workers on the storage (default 1)")
    p.add_argument("--launcher", default="local", choices=("local", "slurm"),
                   help="local processes or SLURM (submitit)")
    p.add_argument("--max-retries", type=int, default=2, help="retries of a failing job (default 2)")
    p.add_argument("--profile", help=f"{PROFILE_NAMES} (default: each setup's)")
    profile_options(p)
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto; one GPU per worker)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plan", action="store_true",
                   help="print the jobs (done or missing), the artifacts they need and the projected device-hours; "
                   "run nothing")
    p.set_defaults(func=cmd_sweep)
