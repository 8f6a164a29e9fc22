"""The records layer's one rule for appended rows (a torn last line is produced again, a
damaged earlier line stops with one line), and study kinds looked up by name."""
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from mfsearch.cli.search import main as search_main
from mfsearch.common import UsageError
from mfsearch.records.appended import append_rows, keyed_rows, read_rows
from mfsearch.records.runjson import write_run_json
from mfsearch.studies import KINDS, analyze_study, kind_of, load_study, recorded_kind
from mfsearch.studies.registry import StudyKind

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("analyze_cli", REPO / "analyze.py")
_analyze = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_analyze)
analyze_main = _analyze.main
ATTENTION = REPO / "experiments" / "attention.yaml"   # smoke size: one short training


def test_a_torn_last_line_is_skipped_with_a_warning_and_cut_before_appending(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"k": 1}\n\n{"k": 2}\n{"k": 3, "va')
    assert read_rows(path) == [{"k": 1}, {"k": 2}]
    assert "line 4 is torn" in capsys.readouterr().err
    with append_rows(path) as write:
        write({"k": 3})
    assert path.read_text() == '{"k": 1}\n\n{"k": 2}\n{"k": 3}\n'
    # a whole last row that only lacks its line break is kept, not cut
    path.write_text('{"k": 1}\n{"k": 2}')
    with append_rows(path) as write:
        write({"k": 3})
    assert [r["k"] for r in read_rows(path)] == [1, 2, 3]


@pytest.mark.parametrize("body", ['{"k": 1}\nnot json\n{"k": 2}\n', '{"k": 1}\n[1, 2]\n{"k": 2}\n'])
def test_an_unreadable_earlier_line_is_a_usage_error_naming_file_and_line(tmp_path, body):
    path = tmp_path / "rows.jsonl"
    path.write_text(body)
    with pytest.raises(UsageError, match=r"rows\.jsonl line 2 is unreadable"):
        read_rows(path)


def test_a_row_without_its_key_is_unreadable_too(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"k": 1}\n{"other": 2}\n')
    with pytest.raises(UsageError, match=r"line 2 is unreadable"):
        keyed_rows(path, lambda r: r["k"])
    assert keyed_rows(tmp_path / "none.jsonl", lambda r: r["k"]) == {}


def test_a_study_retrains_its_torn_last_row_and_stops_on_a_damaged_one(tmp_path, capsys):
    args = ["--experiment", str(ATTENTION), "--out", str(tmp_path)]
    assert search_main(args) == 0
    rows_path = tmp_path / "attention" / "rows.jsonl"
    (row,) = read_rows(rows_path)
    rows_path.write_text(json.dumps(row)[:-20])   # killed while writing its only row
    capsys.readouterr()
    assert search_main(args) == 0
    out, err = capsys.readouterr()
    assert "line 1 is torn" in err and "0 of 1 already done" in out and "[1/1]" in out
    (again,) = read_rows(rows_path)
    assert again["variant"] == row["variant"] and again["status"] == "complete"
    assert len(pd.read_parquet(tmp_path / "attention" / "trials.parquet")) == 1
    rows_path.write_text("{garbage\n" + rows_path.read_text())
    assert search_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{rows_path} line 1 is unreadable" in err


def test_kind_of_is_the_one_default():
    assert kind_of({}) == "variants" and kind_of({"variants": {}}) == "variants"
    assert kind_of({"search": {"budgets": ["25M"]}}) == "budgets"
    assert kind_of({"kind": "detection", "search": {}}) == "detection"
    assert recorded_kind({"kind": "datasets", "spec": {"search": {}}}) == "datasets"   # run.json's kind wins
    assert recorded_kind({"study": "old", "spec": {"search": {"budgets": ["25M"]}}}) == "budgets"
    assert recorded_kind({"study": "old", "spec": {"analysis": "truth"}}) == "variants"


def test_a_study_files_kind_is_loaded_by_name(tmp_path):
    assert load_study(REPO / "experiments" / "builtin_fidelity.yaml").kind == "datasets"
    assert load_study(REPO / "experiments" / "budgets.yaml").kind == "budgets"
    assert load_study(ATTENTION).kind == "variants"
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\nkind: datasets\nbase: mobile_former_26m\nvariants: {a: {}}\nsizes: {smoke: {}}\n")
    with pytest.raises(UsageError, match="two or more datasets"):
        load_study(bad)
    bad.write_text("study: x\nkind: sweep\nsizes: {smoke: {}}\n")
    with pytest.raises(UsageError, match="unknown study kind 'sweep'"):
        load_study(bad)


def test_the_kind_in_run_json_decides_the_analysis(tmp_path, monkeypatch, capsys):
    seen = []
    probe = StudyKind("probe", None, None, lambda path, meta, out: seen.append((path, meta["kind"], out)) or
                      (out, [], "probed"))
    monkeypatch.setitem(KINDS, "probe", probe)
    folder = tmp_path / "s"
    folder.mkdir()
    # keys that would make it a `budgets` study if the kind were guessed from them
    write_run_json(folder, {"study": "s", "kind": "probe", "spec": {"search": {"budgets": ["25M"]}}})
    assert analyze_study(folder) == (folder / "analysis", [], "probed")
    assert seen == [(folder, "probe", folder / "analysis")]
    assert analyze_main([str(folder)]) == 0 and "probed" in capsys.readouterr().out
    write_run_json(folder, {"study": "s", "kind": "sweep"})
    assert analyze_main([str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown study kind 'sweep'" in err


def test_an_old_folder_without_a_kind_is_resolved_and_analysed(tmp_path, monkeypatch):
    assert search_main(["--experiment", str(ATTENTION), "--out", str(tmp_path)]) == 0
    run_json = tmp_path / "attention" / "run.json"
    meta = json.loads(run_json.read_text())
    assert meta["kind"] == "variants"
    del meta["kind"]   # as written before kinds were recorded
    write_run_json(run_json.parent, meta)
    calls = []
    monkeypatch.setitem(KINDS, "variants", StudyKind("variants", None, None,
                                                     lambda p, m, o: calls.append(p) or (o, [], "")))
    analyze_study(run_json.parent)
    assert calls == [run_json.parent]


def test_a_process_records_the_commit_it_started_with(monkeypatch):
    """git is asked once per process: a search that starts hours into a study records the
    commit the study started from, not one checked out under it since."""
    from mfsearch.records import runjson
    first = runjson.environment()
    monkeypatch.setattr(runjson.subprocess, "run", lambda *a, **k: pytest.fail("git asked again"))
    again = runjson.environment()
    assert (again["git_commit"], again["git_dirty"]) == (first["git_commit"], first["git_dirty"])
