"""The `budgets` study kind: one resumable search.py run per budget and seed under a single
proxy protocol (the file's `search:` entry), merged by analyze.py into one Pareto analysis."""
from __future__ import annotations

from pathlib import Path

from ..analysis.studies import analyze_searches
from ..common import UsageError
from ..records.runjson import RUN_JSON
from ..search.run import earlier_run, run_search
from ..search.settings import SearchSettings, space_setting
from .registry import StudyKind, register
from .training import write_run_json
from .variants import Study, load_classification


def _check(study: Study) -> None:
    if not study.search:
        raise ValueError("a `budgets` study gives `search: {budgets: [...], ...}`")


def load_budgets(path: Path, raw: dict, size: str) -> Study:
    return load_classification(path, raw, size, "budgets", _check)


def run_searches(study: Study, out: Path, log=print, save_weights: bool = False, device: str = "cpu") -> Path:
    """One resumable search.py run per budget and seed, each training on `device`
    (`save_weights` does not apply: each search keeps weights as search.py does by default)."""
    run_dir = Path(out) / study.name
    (protocol,) = study.protocols.values()
    sch = study.search
    settings = [SearchSettings(budget=b, backend=sch.backend, objective=sch.objective, trials=t,
                               confirm_top=sch.confirm_top, band=sch.band, cost=sch.cost,
                               param_budget=sch.param_budget, baseline_widths=sch.baseline_widths,
                               space=space, space_file=space_file,
                               dataset=study.dataset, data_root=study.data_root, protocol=protocol, seed=s,
                               name=sch.run_name(b, s, sp), out=str(run_dir), device=device)
                for b, t in zip(sch.budgets, sch.trials)   # budget outermost: a part-run compares the spaces
                for sp in sch.spaces for space, space_file in [space_setting(sp)] for s in study.seeds]
    finished = [search_finished(st) for st in settings]  # raises before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_json(study, run_dir, searches=[st.name for st in settings])
    for i, (st, done) in enumerate(zip(settings, finished), 1):
        if done:
            log(f"[{i}/{len(settings)}] search {st.name}: already finished")
            continue
        log(f"[{i}/{len(settings)}] search {st.name} ({st.trials} trials, {sch.backend}, {sch.objective})")
        run_search(st)
    log(f"results: {len(settings)} searches in {run_dir}; next: python analyze.py {run_dir}")
    return run_dir


def search_finished(settings: SearchSettings) -> bool:
    """True when this search already finished; refuses a folder holding a different search."""
    if not (settings.run_dir / RUN_JSON).is_file():
        return False
    meta, diff = earlier_run(settings, f"delete {settings.run_dir} or pass another --out")
    if diff:
        raise UsageError(f"{settings.run_dir} holds a search with other settings than this study file asks for; "
                         "delete that folder or pass another --out")
    # more trials than last time: run_search resumes the same study and adds the difference
    return meta.get("status") == "finished" and meta["settings"].get("trials") == settings.trials


register(StudyKind("budgets", load_budgets, run_searches, analyze_searches))
