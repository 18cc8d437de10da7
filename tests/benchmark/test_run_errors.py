"""Bad input to ``python -m benchmark.run``: one message, exit code 2, nothing written.

Also ``--list`` and ``--dry-run``, which only read. None of these start Ray.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.run import main

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.syspath_prepend(str(HERE))


def _bad_toml(tmp_path: Path) -> str:
    path = tmp_path / "bad.toml"
    path.write_text('[[grid]]\ntasks = ["mnist_scale"]\nmodels = ["cnn"]\n'
                    '[grid.trial]\nepochs = 1\nwidht = 0.5\n')
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["--suite", "nope"], "unknown suite 'nope'; suites: data_efficiency, full"),
    (["--suite", "quick", "--models", "cnn,nope"], "--models: unknown model 'nope'"),
    (["--suite", "quick", "--tasks", "mnist"], "--tasks: unknown task 'mnist'"),
    (["--suite", "BAD"], "bad.toml:6: grid[1].trial.widht: unknown key"),
    (["--suite", "quick", "--gpus-per-trial", "GPUS"], "this machine has"),
    (["--suite", "quick", "--data-dir", "EMPTY"], "task mnist_scale: no MNIST files found"),
    (["--suite", "quick", "--model", "no_such_module:f"], "cannot import no_such_module"),
    (["--suite", "OUTSIDE"], "model 'no_such_module:build': cannot import no_such_module"),
    (["--suite", "quick", "--model", "harness_models:nothing"], "has no callable 'nothing'"),
    (["--suite", "quick", "--model", "harness_models"], "expected MODULE:FACTORY"),
    (["--suite", "quick", "--cpus-per-trial", "0"], "--cpus-per-trial 0.0: must be > 0"),
    (["--suite", "quick", "--num-cpus", "2", "--address", "127.0.0.1:1"],
     "only for a local Ray"),
    (["--suite", "quick", "--models", "sefl", "--seeds", "7"], "no trial of suite 'quick'"),
    ([], "--suite is required"),
])
def test_bad_input_exits_2_with_one_message_and_writes_nothing(tmp_path, capsys, args,
                                                               message):
    gpus = str(torch.cuda.device_count() + 1)
    outside = tmp_path / "outside.toml"
    outside.write_text('[[grid]]\ntasks = ["mnist1d_scale"]\nmodels = ["no_such_module:build"]\n')
    args = [{"BAD": _bad_toml(tmp_path), "GPUS": gpus, "OUTSIDE": str(outside),
             "EMPTY": str(tmp_path / "empty")}.get(a, a) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert list(tmp_path.glob("mlflow.db")) == [] and not (tmp_path / "ray_results").exists()


def test_a_malformed_option_value_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--suite", "quick", "--seeds", "zero"])
    assert info.value.code == 2
    assert "expected integers like 0,1,2" in capsys.readouterr().err


def test_list_names_suites_tasks_and_models(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "smoke" in out and "paper_mnist" in out
    assert "mnist1d_scale" in out and "fourier_cnn1d" in out


def test_dry_run_lists_trials_and_writes_nothing(tmp_path, capsys):
    assert main(["--suite", "smoke", "--tasks", "mnist1d_scale", "--dry-run",
                 "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["key", "trial", "setting", "status", "why"]
    assert [line.split()[1] for line in out[1:-1]] == [
        f"mnist1d_scale/{m}/s0" for m in sorted(__import__("benchmark.zoo").zoo.list_models(
            "mnist1d_scale"))]
    assert all(line.split()[-6:] == ["new", "no", "run", "with", "this", "key"] for line in out[1:-1])
    assert out[-1].startswith(f"{len(out) - 2} trials: 0 cached, 0 to resume")
    assert not (tmp_path / "mlflow.db").exists()


def test_help_shows_groups_and_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for group in ("suite, tasks and models", "resources", "tracking and caching", "examples:"):
        assert group in out


def test_a_read_only_data_folder_gets_its_cache_in_the_working_folder(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("SEFL_CACHE_DIR", raising=False)
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(0o555)
    try:
        assert main(["--suite", "smoke", "--tasks", "mnist1d_scale", "--models", "sefl",
                     "--dry-run", "--data-dir", str(data)]) == 0
        assert list((tmp_path / "data" / "cache").glob("mnist1d_scale-*.pt"))
        assert list(data.iterdir()) == []
    finally:
        data.chmod(0o755)
