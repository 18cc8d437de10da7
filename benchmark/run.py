"""``python -m benchmark.run``: run a suite with Ray Tune and record it in MLflow.

Every name, resource and data set is checked before anything starts; a mistake is one message
and exit code 2, with nothing launched and nothing written to MLflow. Finished trials (by trial
key) are skipped; interrupted ones continue from their last checkpoint. Exit code 1 when a
trial failed, 130 when interrupted, 3 when the Ray cluster died under the driver, 4 when the
tracking store stayed away longer than the retry bound (the same command resumes both), else 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["UserError", "build_parser", "main"]

EXAMPLES = """\
examples:
  python -m benchmark.run --suite quick
  python -m benchmark.run --suite smoke --models 'sefl*,cnn' --seeds 0 --dry-run
  python -m benchmark.run --suite my_suite.toml --model mypackage.models:build_net
  python -m benchmark.run --suite full --address auto --gpus-per-trial 0.5 \\
      --tracking-uri http://mlflow-host:5000 --storage /shared/ray_results
  python -m benchmark.run --list
"""


class UserError(Exception):
    """A mistake of the user's: printed as one line, exit code 2."""


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1,2, got {text!r}") from err


def build_parser() -> argparse.ArgumentParser:
    """The command line, its options grouped as in ``--help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.run",
        description="Run a benchmark suite: every trial scheduled by Ray Tune, every number "
                    "recorded in MLflow, finished trials never run twice.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("suite, tasks and models")
    what.add_argument("--suite", help="a suite name (see --list) or the path of a .toml file")
    what.add_argument("--models", type=_names, help="only these models (comma-separated, "
                      "wildcards allowed: 'sesn_*')")
    what.add_argument("--tasks", type=_names, help="only these tasks (comma-separated)")
    what.add_argument("--seeds", type=_seeds, help="only these seeds (comma-separated)")
    what.add_argument("--model", action="append", default=[], metavar="MODULE:FACTORY",
                      help="add a model from outside the zoo to every grid of the suite; "
                      "called as factory(task=..., width=..., **model_options); repeatable")
    what.add_argument("--list", action="store_true", help="print the suites, tasks and models")
    what.add_argument("--dry-run", action="store_true",
                      help="print the expanded trials, their keys and whether each is cached")
    resources = parser.add_argument_group("resources")
    resources.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                           help="an existing Ray cluster ('auto', host:port); default: "
                           "$RAY_ADDRESS, else a local Ray on this machine")
    resources.add_argument("--num-cpus", type=int, help="CPUs of the local Ray "
                           "(default: all of this machine's); not with --address")
    resources.add_argument("--cpus-per-trial", type=float, default=1.0,
                           help="CPUs per trial, fractions allowed (default 1)")
    resources.add_argument("--gpus-per-trial", type=float, default=None,
                           help="GPUs per trial, fractions allowed; 0: train on the CPU "
                           "(default: none on a cluster without GPUs, else per task: "
                           "mnist1d_scale 0.25, mnist_scale 0.5, stl10_scale 1)")
    resources.add_argument("--max-failures", type=int, default=1, help="retries of a trial "
                           "that crashed (out of memory, a lost node or worker), from its "
                           "last checkpoint; a trial that raises fails at once (default 1; "
                           "-1: no limit)")
    resources.add_argument("--storage", default="ray_results", help="Tune's storage path for "
                           "checkpoints (default ./ray_results; a shared path or URI on a "
                           "cluster)")
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", help="where the datasets are (default: $SEFL_DATA_DIR, "
                      "else ./data)")
    data.add_argument("--download", action="store_true",
                      help="download missing datasets before starting")
    data.add_argument("--cache-dir", help="where built tasks are cached (default: "
                      "<data-dir>/cache, or ./data/cache when the data folder is read-only)")
    tracking = parser.add_argument_group("tracking and caching")
    tracking.add_argument("--tracking-uri", help="MLflow tracking URI (default: "
                          "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)")
    tracking.add_argument("--rerun", action="store_true",
                          help="run finished trials again (the new run replaces the old one)")
    output = parser.add_argument_group("output")
    output.add_argument("--verbose", action="store_true",
                        help="Ray's and Tune's own logs and tables instead of one status line")
    return parser


def _check_numbers(args: argparse.Namespace) -> None:
    if args.cpus_per_trial <= 0:
        raise UserError(f"--cpus-per-trial {args.cpus_per_trial}: must be > 0")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise UserError(f"--gpus-per-trial {args.gpus_per_trial}: must be >= 0")
    if args.max_failures < -1:
        raise UserError(f"--max-failures {args.max_failures}: must be >= -1")
    if args.num_cpus is not None and (args.num_cpus < 1 or args.address):
        raise UserError(f"--num-cpus {args.num_cpus}: must be >= 1, and only for a local Ray "
                        "(not with --address)")


def _check_model_names(models: Sequence[str] | None) -> None:
    from benchmark.zoo import list_models

    for name in models or []:
        if not any(c in name for c in "*?[:") and name not in list_models():
            raise UserError(f"--models: unknown model {name!r}; models: "
                            f"{', '.join(list_models())}")


def _check_outside_models(specs: Sequence[str]) -> None:
    """Each ``module:factory`` (from --model or a suite) imports and names a callable."""
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise UserError(f"model {spec!r}: expected MODULE:FACTORY")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise UserError(f"model {spec!r}: cannot import {module_name}: {err}") from err
        if not callable(getattr(module, attr, None)):
            raise UserError(f"model {spec!r}: {module_name} has no callable {attr!r}")


def _check_task_names(tasks: Sequence[str] | None) -> None:
    from benchmark.zoo import TASKS

    for name in tasks or []:
        if not any(c in name for c in "*?[") and name not in TASKS:
            raise UserError(f"--tasks: unknown task {name!r}; tasks: {', '.join(TASKS)}")


def _cache_dir(given: str | None, data_dir: Path) -> Path:
    """Where built tasks are cached: ``--cache-dir``, else the tasks' default; absolute, because
    Ray runs each trial in a working directory of its own."""
    from benchmark.tasks import default_cache_dir

    return (Path(given) if given else default_cache_dir(data_dir)).resolve()


def _check_data(trials: list[dict], data_dir: Path, cache_dir: Path | None, download: bool,
                missing_data: str) -> list[dict]:
    """Build each distinct task once (the seed does not decide whether data is there); a task
    that cannot be built stops the run, or with ``missing_data = "skip"`` loses its trials."""
    from benchmark.tracking import TASK_FIELDS
    from benchmark.train import build_task
    from benchmark.trial import canonical_json

    problems: dict[str, str | None] = {}
    kept = []
    for trial in trials:
        ident = canonical_json({f: trial[f] for f in TASK_FIELDS})
        if ident not in problems:
            try:
                build_task(trial, str(data_dir), cache_dir and str(cache_dir), download)
                problems[ident] = None
            except ValueError as err:
                if missing_data != "skip":
                    raise UserError(f"task {trial['task']}: {err}") from err
                problems[ident] = str(err)
                print(f"skipping the trials of task {trial['task']} (the suite allows it): "
                      f"{err}", file=sys.stderr)
        if problems[ident] is None:
            kept.append(trial)
    if not kept:
        raise UserError("no task of the suite can be built (see above)")
    return kept


def _settings(trials: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per trial, the fields that tell it apart from other trials of its task/model/seed
    (a sweep's ``n_train=5000``); empty where it is the only one."""
    from benchmark.trial import canonical_json

    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for trial in trials:
        groups.setdefault((trial["task"], trial["model"], trial["seed"]), []).append(trial)
    varying = {
        name: [f for f in group[0] if len({canonical_json(t[f]) for t in group}) > 1]
        for name, group in groups.items()
    }
    return [" ".join(f"{f}={canonical_json(t[f])}"
                     for f in varying[(t["task"], t["model"], t["seed"])]) for t in trials]


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _list() -> int:
    from benchmark.suites import list_suites, load_suite
    from benchmark.zoo import TASKS, list_models

    print("suites:")
    for name in list_suites():
        print(f"  {name:16s} {load_suite(name).description}")
    print("tasks and their models:")
    for task in TASKS:
        print(f"  {task:16s} {', '.join(list_models(task)) or '(none registered)'}")
    return 0


def _tracking_uri(args: argparse.Namespace) -> str:
    from benchmark.tracking import DEFAULT_TRACKING_URI

    return args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _resume_points(tracker, finished: Mapping[str, Any]) -> dict[str, str]:
    """trial key -> checkpoint to continue from, for unfinished trials whose checkpoint is
    still there (a --rerun of a finished trial starts afresh)."""
    return {key: where for key, where in tracker.resumable().items()
            if key not in finished and ("://" in where or Path(where).is_dir())}


@dataclass(frozen=True)
class _Plan:
    """A checked invocation: the suite's trials and keys, and where everything goes."""

    suite: str
    trials: list[dict]
    keys: list[str]
    outside_models: list[str]  # module:factory models among the trials
    tracking_uri: str
    version: str
    code: str
    data_dir: Path
    cache_dir: Path | None
    started: float  # time.perf_counter() at the start of the command


def _lookup(plan: _Plan):
    """(tracker or None, finished runs by key, resume points by key) of the suite's store;
    a store that does not exist yet is not created by reading it."""
    from mlflow.exceptions import MlflowException

    from benchmark.tracking import Tracker, store_exists

    if not store_exists(plan.tracking_uri):
        return None, {}, {}
    try:
        tracker = Tracker(plan.tracking_uri, plan.suite, plan.version, plan.code)
        finished = tracker.finished()
        return tracker, finished, _resume_points(tracker, finished)
    except MlflowException as err:
        raise UserError(f"--tracking-uri {plan.tracking_uri}: {err.message}") from err


def _dry_run(plan: _Plan) -> int:
    from benchmark.trial import cache_status, trial_name

    _, finished, resumable = _lookup(plan)
    runs = {k: (run.info.run_id, run.data.params) for k, run in finished.items()}
    found = [cache_status(t, k, runs, resumable) for t, k in zip(plan.trials, plan.keys)]
    status = [st for st, _ in found]
    rows = [[k[:12], trial_name(t), s, st, why] for t, k, s, (st, why) in
            zip(plan.trials, plan.keys, _settings(plan.trials), found)]
    _print_table(["key", "trial", "setting", "status", "why"], rows)
    print(f"{len(plan.trials)} trials: {status.count('cached')} cached, "
          f"{status.count('resume')} to resume, {status.count('new')} new (suite {plan.suite}, "
          f"MLflow {plan.tracking_uri})")
    return 0


def _status(outcome) -> str:
    """A summary row's status: an interrupted trial says how far it got, or that it never
    started."""
    if outcome.status != "killed":
        return outcome.status
    if outcome.epochs is None:
        return "not started"
    return f"interrupted at epoch {outcome.epochs}" if outcome.epochs else "interrupted"


def _summary(plan: _Plan, outcomes: Mapping[str, Any], wall_s: float) -> None:
    from benchmark.progress import format_seconds, summary_table

    rows = []
    for trial, key, setting in zip(plan.trials, plan.keys, _settings(plan.trials)):
        outcome = outcomes[key]
        rows.append({"task": trial["task"], "model": trial["model"] + (f" ({setting})"
                     if setting else ""), "seed": trial["seed"], "status": _status(outcome),
                     "test_acc": outcome.metrics.get("test/acc"),
                     "equiv_err": outcome.metrics.get("equiv/err"),
                     "train_s": outcome.metrics.get("time/train_s")})
    print(summary_table(rows))
    counts = {s: sum(o.status == s for o in outcomes.values())
              for s in ("finished", "cached", "failed", "killed")}
    print(f"{counts['finished']} finished, {counts['cached']} cached, {counts['failed']} "
          f"failed, {counts['killed']} interrupted in {format_seconds(wall_s)}; MLflow "
          f"{plan.tracking_uri}, experiment sefl-bench/{plan.suite}")
    elsewhere = sum(o.status == "elsewhere" for o in outcomes.values())
    if elsewhere:
        print(f"{elsewhere} trials are being run by another driver on the same store (their "
              "claims); the same command later picks up any it leaves unfinished")
    for trial, key in zip(plan.trials, plan.keys):
        if outcomes[key].status == "failed":
            print(f"FAILED {trial['task']}/{trial['model']}/s{trial['seed']}: "
                  f"{outcomes[key].error}")


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    started = time.perf_counter()
    if args.list:
        return _list()
    if not args.suite:
        raise UserError("--suite is required (see --list for the suites)")
    _check_numbers(args)
    from benchmark.suites import SuiteError, expand_suite, load_suite
    from benchmark.tasks import default_data_dir
    from benchmark.trial import code_fingerprint, package_version, trial_key

    _check_model_names(args.models)
    _check_outside_models(args.model)
    _check_task_names(args.tasks)
    try:
        suite = load_suite(args.suite)
        trials = expand_suite(suite, models=args.models, tasks=args.tasks, seeds=args.seeds,
                              extra_models=args.model)
    except SuiteError as err:
        raise UserError(str(err)) from err
    outside = sorted({t["model"] for t in trials if ":" in t["model"]})
    _check_outside_models(outside)
    if args.gpus_per_trial and not args.address:
        import torch

        if args.gpus_per_trial > torch.cuda.device_count():
            raise UserError(f"--gpus-per-trial {args.gpus_per_trial:g}: this machine has "
                            f"{torch.cuda.device_count()} GPUs (use --address for a cluster "
                            "that has them)")
    data_dir = Path(args.data_dir or default_data_dir()).resolve()
    cache_dir = _cache_dir(args.cache_dir, data_dir)
    trials = _check_data(trials, data_dir, cache_dir, args.download, suite.missing_data)
    version = package_version()
    code = code_fingerprint()  # once: it reads every source file
    plan = _Plan(suite=suite.name, trials=trials, keys=[trial_key(t, code) for t in trials],
                 outside_models=outside, tracking_uri=_tracking_uri(args), version=version,
                 code=code, data_dir=data_dir, cache_dir=cache_dir, started=started)
    return _dry_run(plan) if args.dry_run else _execute(args, argv, plan)


def _execute(args: argparse.Namespace, argv: Sequence[str], plan: _Plan) -> int:
    import logging

    import mlflow  # noqa: F401  (it sets its logger up on import; ours must come after)

    from benchmark import cluster
    from benchmark.progress import Progress
    from benchmark.tracking import Heartbeat, StoreUnavailable, Tracker

    if not args.verbose:
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # An mlflow server's client prints two links per finished run otherwise.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    tracker, finished, resumable = _lookup(plan)
    todo = [(t, k) for t, k in zip(plan.trials, plan.keys) if args.rerun or k not in finished]
    experiment = f"{plan.suite}-{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    storage = args.storage if "://" in args.storage else str(Path(args.storage).resolve())
    log_file = _ray_log_file(storage, experiment)
    gpu_shares: dict[str, float] = {}
    if todo:  # before the first write to MLflow: a cluster too small is the user's mistake
        try:
            have = cluster.connect(args.address, num_cpus=args.num_cpus,
                            cpus_per_trial=args.cpus_per_trial,
                            gpus_per_trial=args.gpus_per_trial or 0.0,
                            modules=cluster.outside_modules(plan.outside_models),
                            verbose=args.verbose, log_file=None if args.verbose else log_file)
        except ValueError as err:
            raise UserError(str(err)) from err
        gpu_shares = {t["task"]: cluster.gpu_share(t["task"], have.get("GPU", 0.0),
                                                   args.gpus_per_trial) for t, _ in todo}
    # Only now: importing Ray's Tune imports Ray, whose settings connect() decides.
    import ray

    from benchmark.orchestrate import Outcome, run_entries

    outcomes = {k: Outcome("cached", metrics=dict(finished[k].data.metrics))
                for k in plan.keys if k in finished and not args.rerun}
    tracker = tracker or Tracker(plan.tracking_uri, plan.suite, plan.version, plan.code)
    command = shlex.join(["python", "-m", "benchmark.run", *argv])
    heartbeat = None
    try:
        tracker.kill_stale()
        parent = tracker.start_parent(command)
        heartbeat = Heartbeat(tracker, parent)
        heartbeat.start()
        pending = _claim(tracker, parent, todo, finished, resumable, outcomes)
        statuses = [o.status for o in outcomes.values()]
        progress = Progress(total=len(plan.trials) - statuses.count("elsewhere"),
                            cached=statuses.count("cached"))

        def cluster_lost(so_far: Mapping[str, Any], problem: str) -> None:
            # Called from the cluster watch's thread while Tune's loop still runs: close the
            # records, say how to resume, and end the process without waiting for Ray.
            progress.close()
            _close(plan, tracker, parent, {**outcomes, **so_far})
            print(_lost_message(plan, {**outcomes, **so_far}, problem, command,
                                None if args.verbose else log_file), file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_CLUSTER_LOST)

        if pending:
            outcomes.update(run_entries(
                pending, tracker=tracker, parent_id=parent, progress=progress,
                experiment=experiment, storage=storage,
                cpus_per_trial=args.cpus_per_trial, gpu_shares=gpu_shares,
                max_failures=args.max_failures, data_dir=str(plan.data_dir),
                cache_dir=plan.cache_dir and str(plan.cache_dir), version=plan.version,
                verbose=args.verbose, on_cluster_lost=cluster_lost))
        progress.close()
        statuses = _close(plan, tracker, parent, outcomes)
    except StoreUnavailable as err:
        outcomes.update(getattr(err, "outcomes", {}))
        outcomes.update({k: Outcome("killed") for k in plan.keys if k not in outcomes})
        print(_store_lost_message(plan, outcomes, str(err), command), file=sys.stderr)
        return EXIT_STORE_LOST
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        if ray.is_initialized():
            ray.shutdown()
    return 130 if "killed" in statuses else 1 if "failed" in statuses else 0


EXIT_CLUSTER_LOST = 3
EXIT_STORE_LOST = 4


def _store_lost_message(plan: _Plan, outcomes: Mapping[str, Any], problem: str,
                        command: str) -> str:
    """What the user reads when the tracking store stayed away: what is recorded, and how
    to go on."""
    return (f"error: {problem}; stopped. Of {len(plan.trials)} trials: "
            f"{_tally(plan, outcomes)}; "
            f"the finished ones are recorded. Once the store answers again, run the same "
            f"command to resume the rest from their checkpoints: {command}")


def _claim(tracker, parent: str, todo: Sequence[tuple[dict, str]], finished: Mapping[str, Any],
           resumable: Mapping[str, str], outcomes: dict[str, Any]) -> list:
    """The entries this driver runs: those of ``todo`` it could claim and that no other
    driver finished meanwhile. The others go into ``outcomes`` as "elsewhere" (a live driver
    holds them) or "cached"."""
    from benchmark.orchestrate import Entry, Outcome

    mine = tracker.claim([k for _, k in todo], parent) if todo else set()
    # A driver that just ended has released its claims: what it finished is not run again.
    done_now = {k: run for k, run in tracker.finished().items()
                if k in mine and k not in finished} if mine else {}
    pending = []
    for trial, key in todo:
        if key in done_now:
            outcomes[key] = Outcome("cached", metrics=dict(done_now[key].data.metrics))
        elif key in mine:
            pending.append(Entry(trial, key, resumable.get(key)))
        else:
            outcomes[key] = Outcome("elsewhere")
    return pending


def _ray_log_file(storage: str, experiment: str) -> Path:
    """Where the driver's Ray and Tune logs go (not to the console): beside Tune's records of
    the experiment when they are local, else in the temporary folder."""
    import tempfile

    if "://" in storage:
        return Path(tempfile.gettempdir()) / "sefl-bench" / f"{experiment}.log"
    return Path(storage) / experiment / "driver.log"


def _names_of(plan: _Plan, outcomes: Mapping[str, Any], status: str, most: int = 5) -> str:
    from benchmark.trial import trial_name

    names = [trial_name(t) for t, k in zip(plan.trials, plan.keys)
             if outcomes[k].status == status]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"{len(names)} {status}" + (f" ({', '.join(names[:most])}{more})" if names else "")


def _tally(plan: _Plan, outcomes: Mapping[str, Any]) -> str:
    """``"1 finished (a/b/s0), 2 interrupted (...)"``: the statuses that occur, named."""
    return ", ".join(_names_of(plan, outcomes, s).replace("killed", "interrupted")
                     for s in ("finished", "cached", "failed", "killed", "elsewhere")
                     if s == "finished" or any(o.status == s for o in outcomes.values()))


def _lost_message(plan: _Plan, outcomes: Mapping[str, Any], problem: str, command: str,
                  log_file: Path | None) -> str:
    """What the user reads when the cluster died: what finished and how to go on."""
    log = f" Ray's log: {log_file}." if log_file is not None else ""
    return (f"error: the Ray cluster stopped under the driver ({problem}). Of "
            f"{len(plan.trials)} trials: {_tally(plan, outcomes)}; the finished ones are recorded "
            f"in MLflow {plan.tracking_uri}. Start Ray again (for --address) and run the same "
            f"command to resume the rest from their checkpoints: {command}{log}")


def _close(plan: _Plan, tracker, parent: str, outcomes: Mapping[str, Any]) -> list[str]:
    """End the invocation's run with its counts and print the summary; the statuses."""
    statuses = [o.status for o in outcomes.values()]
    wall_s = time.perf_counter() - plan.started
    tracker.end_parent(parent, "KILLED" if "killed" in statuses else
                       "FAILED" if "failed" in statuses else "FINISHED", {
                           "trials/total": len(plan.trials),
                           "trials/cached": statuses.count("cached"),
                           "trials/finished": statuses.count("finished"),
                           "trials/failed": statuses.count("failed"),
                           "trials/elsewhere": statuses.count("elsewhere"),
                           "time/suite_s": wall_s,
                           **{f"time/trials_{part}_s": sum(
                               o.metrics.get(f"time/{part}_s", 0.0) for o in outcomes.values()
                               if o.status == "finished") for part in ("train", "eval")}})
    _summary(plan, outcomes, wall_s)
    return statuses


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from benchmark.tracking import StoreUnavailable

    try:
        return _run(args, argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StoreUnavailable as err:  # before any trial started
        print(f"error: {err}", file=sys.stderr)
        return EXIT_STORE_LOST
    except KeyboardInterrupt:  # before or after Tune, which handles Ctrl-C while it runs
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
