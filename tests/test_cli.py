"""The one `mfsearch` command: subcommands on one parser, one-line errors, and the dashboard
serving a search run's own Optuna storage."""
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import stop_process

from mfsearch.cli import main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["search", "analyze", "attention", "export", "latency", "flops", "bench", "data", "space", "dashboard"]
MFSEARCH = [sys.executable, "-c", "import sys; from mfsearch.cli import main; sys.exit(main())"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(f"    {c}" in out for c in COMMANDS), out


@pytest.mark.parametrize("argv,msg", [
    (["nothing"], "invalid choice"),
    (["latency", "--threads", "x"], "invalid int"),
    (["export"], "required: target"),
    (["space", "--budget", "lots"], "not a number of multiply-adds"),
    (["search", "--trials", "3"], "required: --budget"),
    (["latency", "--models", "no_such_model"], "unknown model"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, msg):
    try:
        code = main(argv)
    except SystemExit as exc:   # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and msg in err, err
    assert err.startswith(f"mfsearch {argv[0]}: error:" if argv[0] in COMMANDS else "mfsearch: error:"), err


def test_a_real_process_prints_one_line_and_no_library_warnings():
    r = subprocess.run([*MFSEARCH, "search", "--trials", "3"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "mfsearch search: error: the following arguments are required: --budget (or --experiment FILE)"], r.stderr


def test_space_reports_range_and_sampling_speed(capsys):
    assert main(["space", "--budget", "150M", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "space mobile_former" in out and "feasible samples/s" in out
    assert main(["space", "--budget", "150M", "--seconds", "0.2", "--space", "mobile_former_cpu"]) == 0
    assert "space mobile_former_cpu: 45 dimensions" in capsys.readouterr().out


def test_dashboard_refuses_folders_without_an_optuna_storage(tmp_path, capsys):
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "run.json").write_text(json.dumps({"settings": {"backend": "ray", "storage": None}}))
    for folder, msg in ((tmp_path, "not a search run folder"), (tmp_path / "ray", "Ray run")):
        assert main(["dashboard", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_dashboard_serves_a_search_runs_study_and_trials(tmp_path):
    space = str(REPO / "tests" / "data" / "tiny_space.yaml")
    assert main(["search", "--budget", "150M", "--trials", "1", "--epochs", "1", "--data-fraction", "0.02",
                 "--test-fraction", "0.05", "--batch-size", "64", "--space", space, "--threads", "1",
                 "--confirm-top", "0", "--no-baselines", "--name", "dash", "--out", str(tmp_path)]) == 0
    port = _free_port()
    proc = subprocess.Popen([*MFSEARCH, "dashboard", str(tmp_path / "dash"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        studies, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                time.sleep(0.5)
        assert [s["study_name"] for s in studies] == ["dash"], proc.poll()
        trials = _get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")["trials"]
        assert len(trials) == 1 and trials[0]["state"] == "Complete"
    finally:
        stop_process(proc, 10)
