"""The headline numbers README.md and docs/results/README.md quote are those of the committed
reports (docs/results/*/report.md, docs/results/latency.json), at the README's rounding.

Each number is parsed from the text by the words around it and from the committed file by
its table row, and the report's value is rounded to as many decimals as the README shows:
a changed report, a changed README, or a number rounded twice (52.25 -> 52.3) fails here.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
N = r"([−+-]?\d+(?:\.\d+)?)"   # a number as the READMEs write it (with a typographic minus)


def _flat(path: Path) -> str:
    """The file's text with every run of whitespace as one space (sentences wrap anywhere)."""
    return " ".join(path.read_text().split())


@pytest.fixture(scope="module")
def readme() -> str:
    return _flat(REPO / "README.md")


@pytest.fixture(scope="module")
def results() -> str:
    return _flat(RESULTS / "README.md")


def _find(pattern: str, text: str, where: str) -> tuple[str, ...]:
    m = re.search(pattern, text)
    assert m, f"{where} no longer says {pattern!r}: update the text or this test"
    return m.groups()


def _num(text: str) -> float:
    return float(text.replace("−", "-").replace("+", "").strip())


def assert_quoted(quoted: str, value: float, what: str) -> None:
    """`quoted` (as the README prints it) is `value` rounded to the README's decimals."""
    q = quoted.replace("−", "-").replace("+", "").strip()
    decimals = len(q.split(".")[1]) if "." in q else 0
    assert float(f"{value:.{decimals}f}") == float(q), f"{what}: text says {quoted}, the committed file {value}"


def _table(path: Path, header: str, which: int = 0) -> list[list[str]]:
    """The rows (cells stripped) of the markdown table whose header line starts with `header`
    (the `which`-th such table of the file)."""
    lines = path.read_text().splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith(header)][which]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _interval(cell: str) -> tuple[float, float]:
    lo, hi = _bounds(cell)
    return _num(lo), _num(hi)


def _bounds(cell: str) -> tuple[str, str]:
    """The two ends of "[lo, hi]" as written."""
    lo, hi = re.findall(r"[−+-]?\d+(?:\.\d+)?", cell)
    return lo, hi


# ----------------------------------------------------------------------------- proxy_calibration

def _calibration_rows(study: str) -> dict[str, list[str]]:
    """A calibration report's table, by protocol."""
    return {r[0]: r for r in _table(RESULTS / study / "report.md", "| protocol | kind | n | Kendall tau")}


def _tau_and_partial(row: list[str], ref: list[str]) -> str:
    """A results row's tau and partial (with intervals) against its report row; the protocol."""
    name = re.search(r"`(\w+)`", row[0]).group(1)
    tau, lo, hi = re.fullmatch(rf"{N} \[{N}, {N}\]", row[1]).groups()
    assert_quoted(tau, float(ref[3]), f"{name} tau")
    for q, v in zip((lo, hi), _interval(ref[4])):
        assert_quoted(q, v, f"{name} tau interval")
    if ref[7] != "n/a":
        partial, lo, hi = re.fullmatch(rf"{N} \[{N}, {N}\]", row[2]).groups()
        assert_quoted(partial, float(ref[7]), f"{name} partial")
        for q, v in zip((lo, hi), _interval(ref[8])):
            assert_quoted(q, v, f"{name} partial interval")
    return name


@pytest.fixture(scope="module")
def calibration() -> dict[str, list[str]]:
    return _calibration_rows("proxy_calibration")


def test_calibration_taus_in_the_readme(readme, calibration):
    tau = {p: float(r[3]) for p, r in calibration.items()}
    trained = [p for p, r in calibration.items() if r[1] == "trained"]
    zero_cost = [p for p, r in calibration.items() if r[1] == "zero-cost" and p not in ("madds", "params")]
    madds, params, best_zc, best_trained = _find(
        rf"MAdds {N}, parameters {N}, the best zero-cost score {N}, the best trained protocol {N}\)",
        readme, "README")
    assert_quoted(madds, tau["madds"], "MAdds tau")
    assert_quoted(params, tau["params"], "parameters tau")
    assert_quoted(best_zc, max(tau[p] for p in zero_cost), "best zero-cost tau")
    assert_quoted(best_trained, max(tau[p] for p in trained), "best trained tau")
    assert tau["madds"] > max(tau[p] for p in trained + zero_cost)  # "no protocol beating MAdds"
    default, old = _find(rf"top-1, {N}, equals the old protocol's \({N}\)", readme, "README")
    assert_quoted(default, tau["default"], "default tau")
    assert_quoted(old, tau["current"], "old protocol's tau")
    partial, lo, hi = _find(rf"held fixed \({N} \[{N}, {N}\]", readme, "README")
    assert_quoted(partial, float(calibration["default"][7]), "default partial")
    for q, v in zip((lo, hi), _interval(calibration["default"][8])):
        assert_quoted(q, v, "default partial interval")


def test_calibration_table_in_the_results(calibration):
    """Every row of the results' calibration table against the report's."""
    seen = set()
    for row in _table(RESULTS / "README.md", "| protocol | Kendall tau vs published"):
        ref = calibration[re.search(r"`(\w+)`", row[0]).group(1)]
        name = _tau_and_partial(row, ref)
        assert_quoted(row[3], float(ref[9]), f"{name} presets tau")
        assert row[4] == ref[10], name
        for col, ref_col in ((5, 11), (6, 12), (7, 16)):
            assert_quoted(row[col], float(ref[ref_col]), f"{name} column {col}")
        seen.add(name)
    assert seen == set(calibration)


@pytest.fixture(scope="module")
def others() -> dict[str, list[str]]:
    return _calibration_rows("proxy_calibration_others")


def test_second_set_in_the_readme(readme, others):
    tau, lo, hi, madds, params, synflow, grad_norm, naswot = _find(
        rf"the shipped protocol ranks them at Kendall tau {N} \[{N}, {N}\] against their published top-1, MAdds at "
        rf"{N} and parameters at {N}; the zero-cost scores at {N} \(synflow\), {N} \(grad_norm\) and {N} \(naswot\)",
        readme, "README")
    assert_quoted(tau, float(others["default"][3]), "second set: default tau")
    for q, v in zip((lo, hi), _interval(others["default"][4])):
        assert_quoted(q, v, "second set: default tau interval")
    for q, name in ((madds, "madds"), (params, "params"), (synflow, "synflow"), (grad_norm, "grad_norm"),
                    (naswot, "naswot")):
        assert_quoted(q, float(others[name][3]), f"second set: {name} tau")
    assert float(others["madds"][3]) > max(float(r[3]) for p, r in others.items() if p not in ("madds", "params"))


def test_second_set_table_in_the_results(results, others):
    seen = set()
    for row in _table(RESULTS / "README.md", "| protocol | Kendall tau vs published (95%) | partial (MAdds held fixed) "
                                             "| seed stability |"):
        ref = others[re.search(r"`(\w+)`", row[0]).group(1)]
        name = _tau_and_partial(row, ref)
        assert_quoted(row[3], float(ref[12]), f"{name} seed stability")
        seen.add(name)
    assert seen == set(others)
    delta, lo, hi = _find(rf"Δ tau {N} \[{N}, {N}\] \(paired bootstrap over the same 12 models\)", results,
                          "docs/results/README.md")
    paired = {r[0]: r for r in _table(RESULTS / "proxy_calibration_others" / "report.md", "| protocol | Δ tau")}
    assert_quoted(delta, float(paired["madds"][1]), "second set: MAdds minus default")
    for q, v in zip((lo, hi), _interval(paired["madds"][2])):
        assert_quoted(q, v, "second set: MAdds minus default interval")
    assert _num(lo) > 0   # "the gap is resolved"
    (monotone,) = _find(rf"each family's sizes correctly \(monotone {N} over the 12 pairs", results,
                        "docs/results/README.md")
    assert_quoted(monotone, float(others["default"][11]), "second set: default monotone")
    summary = _find(rf"the shipped protocol ranks them at Kendall tau {N} \[{N}, {N}\], MAdds at {N}\.", results,
                    "docs/results/README.md")
    want = (float(others["default"][3]), *_interval(others["default"][4]), float(others["madds"][3]))
    for q, v in zip(summary, want):
        assert_quoted(q, v, "second set: the results' summary")


# ----------------------------------------------------------------------------- latency

@pytest.fixture(scope="module")
def latency() -> dict[str, dict]:
    return {r["model"]: r for r in json.loads((RESULTS / "latency.json").read_text())}


def _first(latency, model, runtime="onnxruntime") -> dict:
    return latency[model][runtime][0]   # the first pass, which the table reports


def test_latency_medians_in_the_readme(readme, latency):
    mf151, large = _find(rf"MF-151M {N} ms against MobileNetV3-Large-1.0 {N} ms", readme, "README")
    mf26, small = _find(rf"MF-26M \(64\.0%\) {N} ms against Small-0\.75 \(65\.4%\) {N} ms", readme, "README")
    for quoted, model in ((mf151, "mobile_former_151m"), (large, "mobilenet_v3_large_100"),
                          (mf26, "mobile_former_26m"), (small, "mobilenet_v3_small_075")):
        assert_quoted(quoted, _first(latency, model)["median_ms"], model)


def test_latency_table_in_the_results(latency):
    rows = _table(RESULTS / "README.md", "| model | MAdds | published top-1 | ONNX Runtime ms")
    assert {r[0] for r in rows} == set(latency)
    for r in rows:
        for cell, runtime in ((r[3], "onnxruntime"), (r[5], "torch")):
            median, p10, p90 = re.fullmatch(rf"{N} \({N}–{N}\)", cell).groups()
            rec = _first(latency, r[0], runtime)
            assert_quoted(median, rec["median_ms"], f"{r[0]} {runtime} median")
            assert_quoted(p10, rec["p10_ms"], f"{r[0]} {runtime} p10")
            assert_quoted(p90, rec["p90_ms"], f"{r[0]} {runtime} p90")


# ----------------------------------------------------------------------------- paper_presets

@pytest.fixture(scope="module")
def presets():
    report = RESULTS / "paper_presets" / "report.md"
    top1 = {r[1]: float(r[4]) for r in _table(report, "| protocol | variant | MAdds (M)")}
    pairs = [(r[0].split()[0], r[1].split()[0], r[2], r[3])
             for r in _table(report, "| Mobile-Former | MobileNetV3 | proxy Δ")]
    fits = {r[0]: (float(r[1]), *_interval(r[2])) for r in _table(report, "| family | b | 95% interval")}
    return top1, pairs, fits


def test_paper_presets_in_the_readme(readme, presets):
    top1, pairs, fits = presets
    lo, hi = _find(rf"presets span {N}% \(26M\) to {N}% \(508M\)", readme, "README")
    assert_quoted(lo, top1["mobile_former_26m"], "MF-26M top-1")
    assert_quoted(hi, top1["mobile_former_508m"], "MF-508M top-1")
    quoted = _find(rf"52M vs Small-0\.75 {N}, 52M vs Small-1\.0 {N}, 151M vs Large-0\.75 {N}, "
                   rf"214M vs Large-1\.0 {N} points", readme, "README")
    assert [p[:2] for p in pairs] == [("mobile_former_52m", "mobilenet_v3_small_075"),
                                      ("mobile_former_52m", "mobilenet_v3_small_100"),
                                      ("mobile_former_151m", "mobilenet_v3_large_075"),
                                      ("mobile_former_214m", "mobilenet_v3_large_100")]
    for q, p in zip(quoted, pairs):
        assert_quoted(q, _num(p[2]), f"{p[0]} - {p[1]}")
    mf, mnv3 = _find(rf"\({N} for Mobile-Former, {N} for MobileNetV3\)", readme, "README")
    assert_quoted(mf, fits["mobile_former"][0], "MF exponent")
    assert_quoted(mnv3, fits["mobilenet_v3"][0], "MobileNetV3 exponent")


def test_paper_presets_in_the_results(results, presets):
    top1, pairs, fits = presets
    rows = _table(RESULTS / "README.md", "| Mobile-Former | MobileNetV3 | proxy Δ top-1")
    assert len(rows) == len(pairs)
    for row, (_, _, delta, interval) in zip(rows, pairs):
        assert_quoted(row[2], _num(delta), f"{row[0]} vs {row[1]}")
        for q, v in zip(_bounds(row[3]), _interval(interval)):
            assert_quoted(q, v, f"{row[0]} vs {row[1]} interval")
    got = _find(rf"error against MAdds are {N} \[{N}, {N}\] for Mobile-Former and {N} \[{N}, {N}\] for MobileNetV3",
                results, "docs/results/README.md")
    for q, v in zip(got, (*fits["mobile_former"], *fits["mobilenet_v3"])):
        assert_quoted(q, v, "power-law exponent")
    tau, lo, hi = _find(rf"Kendall tau \*\*{N}\*\* \[{N}, {N}\]", results, "docs/results/README.md")
    ref = re.search(rf"Kendall tau {N} \[{N}, {N}\]", _flat(RESULTS / "paper_presets" / "report.md")).groups()
    for q, v in zip((tau, lo, hi), ref):
        assert_quoted(q, _num(v), "paper_presets Kendall tau")


# ----------------------------------------------------------------------------- detection

@pytest.fixture(scope="module")
def detection():
    report = RESULTS / "detection" / "report.md"
    ap = {(r[0], r[1]): (r[3], r[4]) for r in _table(report, "| backbone | init | seeds | AP")}
    deltas = [(r[0], r[1], r[3]) for r in _table(report, "| pair | init | seeds | delta AP")]
    return ap, deltas


def test_detection_differences_in_the_readme(readme, results, detection):
    from scipy.stats import binomtest
    _, deltas = detection
    quoted = _find(rf"in all four pairings \({N}, {N}, {N}, {N}\)", readme, "README")
    assert [(d[0].split()[0], d[1]) for d in deltas] == [("mobile_former_151m", "scratch"),
                                                         ("mobile_former_151m", "proxy"),
                                                         ("mobile_former_294m", "scratch"),
                                                         ("mobile_former_294m", "proxy")]
    for q, d in zip(quoted, deltas):
        assert_quoted(q, _num(d[2]), f"{d[0]} ({d[1]})")
    # the paired differences and the sign test, from the committed rows
    rows = [json.loads(line) for line in (RESULTS / "detection" / "rows.jsonl").read_text().splitlines() if line]
    ap = {(r["backbone"], r["init"], r["seed"]): r["AP"] for r in rows if r["status"] == "complete"}
    diffs = [ap[(mf, init, s)] - ap[(mnv3, init, s)]
             for mf, mnv3 in (("mobile_former_151m", "mobilenet_v3_large_075"),
                              ("mobile_former_294m", "mobilenet_v3_large_100"))
             for init in ("scratch", "proxy") for s in (0, 1, 2)]
    for text, where in ((readme, "README"), (results, "docs/results/README.md")):
        positive, total, p = _find(rf"{N} of the {N} paired differences are positive.{{0,40}}?"
                                   rf"two-sided sign test(?: on the 12 gives)? p = {N}", text, where)
        assert (int(positive), int(total)) == (sum(d > 0 for d in diffs), len(diffs)), where
        assert_quoted(p, binomtest(int(positive), int(total)).pvalue, f"{where}: sign test p")


def test_detection_table_in_the_results(detection):
    ap, _ = detection
    names = {"MF-151M": "mobile_former_151m", "MobileNetV3-Large-0.75": "mobilenet_v3_large_075",
             "MF-294M": "mobile_former_294m", "MobileNetV3-Large-1.0": "mobilenet_v3_large_100"}
    rows = _table(RESULTS / "README.md", "| backbone | backbone MAdds at 128 px")
    assert [r[0] for r in rows] == list(names)
    for r in rows:
        for cell, init in ((r[2], "scratch"), (r[3], "proxy")):
            mean, lo, hi = re.fullmatch(rf"{N} \[{N}, {N}\]", cell).groups()
            ref_mean, ref_interval = ap[(names[r[0]], init)]
            assert_quoted(mean, float(ref_mean), f"{r[0]} {init} AP")
            for q, v in zip((lo, hi), _interval(ref_interval)):
                assert_quoted(q, v, f"{r[0]} {init} AP interval")


# ----------------------------------------------------------------------------- fidelity studies

def test_fidelity_numbers_in_the_readme(readme):
    agreement = _table(RESULTS / "builtin_fidelity" / "report.md", "| datasets | variants | Spearman rho")
    row = next(r for r in agreement if r[0] == "shapes vs cifar10")
    (rho,) = _find(rf"ranks architectures like CIFAR-10\*\* \(Spearman {N} over", readme, "README")
    assert_quoted(rho, float(row[2]), "shapes vs CIFAR-10 Spearman")
    tau, lo, hi = _find(rf"Kendall tau {N} \[{N}, {N}\] \(`proxy_fidelity`\)", readme, "README")
    report = _flat(RESULTS / "proxy_fidelity" / "report.md")
    ref = _find(rf"Kendall tau {N} \[{N}, {N}\]", report, "proxy_fidelity report")
    for q, v in zip((tau, lo, hi), ref):
        assert_quoted(q, _num(v), "proxy_fidelity Kendall tau")


# ----------------------------------------------------------------------------- search_truth

TRUTH_REPORT = RESULTS / "search_truth" / "report.md"


@pytest.fixture(scope="module")
def truth() -> dict[str, list[str]]:
    """search_truth's protocol table, by protocol."""
    return {r[0]: r for r in _table(TRUTH_REPORT, "| protocol | kind | n | seeds | Kendall tau")}


@pytest.fixture(scope="module")
def truth_set() -> list[list[str]]:
    """search_truth's architectures (variant, family, MAdds, truth top-1, seeds), best first."""
    return _table(TRUTH_REPORT, "| variant | family | MAdds (M) | truth top-1")


def _family_range(truth_set: list[list[str]], family: str) -> tuple[float, float]:
    tops = [float(r[3]) for r in truth_set if r[1] == family]
    return min(tops), max(tops)


def test_search_truth_in_the_readme(readme, truth, truth_set):
    (tau, lo, hi, one_seed, regret, r_tau, r_lo, r_hi, r_pick, r_regret, madds, params, zc_lo, zc_hi,
     mf_lo, mf_hi, mn_lo, mn_hi, gap) = _find(
        rf"the default protocol ranks them at Kendall tau {N} \[{N}, {N}\] \(one seed's ranking {N}\) and its "
        rf"first pick is the truth's best \(regret {N} points\); the finalists' rung \(2 epochs on all images\) at "
        rf"{N} \[{N}, {N}\] \(first pick (\w+), regret {N}\); MAdds rank them at {N}, parameters at {N} and the "
        rf"0-epoch scores at {N} to {N}\. Every Mobile-Former \({N}-{N}%\) beats every MobileNetV3 of the same "
        rf"cost \({N}-{N}%\), best against best {N} points", readme, "README")
    d = truth["default"]
    for q, v, what in ((tau, float(d[4]), "tau"), (one_seed, float(d[8]), "one seed's tau"),
                       (regret, float(d[10]), "regret"), (madds, float(truth["madds"][4]), "madds tau"),
                       (params, float(truth["params"][4]), "params tau")):
        assert_quoted(q, v, f"search_truth: {what}")
    for q, v in zip((lo, hi), _interval(d[5])):
        assert_quoted(q, v, "search_truth: default tau interval")
    rung = truth["rung2"]
    for q, v, what in ((r_tau, float(rung[4]), "rung tau"), (r_regret, float(rung[10]), "rung regret")):
        assert_quoted(q, v, f"search_truth: {what}")
    for q, v in zip((r_lo, r_hi), _interval(rung[5])):
        assert_quoted(q, v, "search_truth: rung tau interval")
    assert r_pick == rung[9]
    scores = [float(truth[s][4]) for s in ("synflow", "grad_norm", "naswot")]
    assert_quoted(zc_lo, min(scores), "search_truth: lowest 0-epoch score")
    assert_quoted(zc_hi, max(scores), "search_truth: highest 0-epoch score")
    assert d[9] == truth_set[0][0] and float(d[10]) == 0   # "its first pick is the truth's best"
    (mf_min, mf_max), (mn_min, mn_max) = (_family_range(truth_set, f) for f in ("mobile_former", "mobilenet_v3"))
    for q, v in zip((mf_lo, mf_hi, mn_lo, mn_hi), (mf_min, mf_max, mn_min, mn_max)):
        assert_quoted(q, v, "search_truth: a family's range")
    assert mf_min > mn_max   # "every Mobile-Former beats every MobileNetV3"
    (ref_gap,) = _find(rf"Best Mobile-Former minus best MobileNetV3 under the truth: {N} points", _flat(TRUTH_REPORT),
                       "search_truth report")
    assert_quoted(gap, _num(ref_gap), "search_truth: best against best")
    tau, lo, hi, pick, regret, gap = _find(
        rf"On `shapes_hard` \(`search_truth_shapes`, `truth` = 16 epochs on all 5,000 images\) the default protocol "
        rf"ranks the same 16 at {N} \[{N}, {N}\] and again picks (\w+), the best there too \(regret {N}\), though one "
        rf"seed of that truth is noisy \(seeds of one architecture {N} points apart on average\)", readme, "README")
    shapes = next(r for r in _table(SHAPES_TRUTH_REPORT, "| protocol | kind") if r[0] == "default")
    assert [tau, lo, hi, pick, regret] == [shapes[4], *_bounds(shapes[5]), shapes[9], shapes[10]]
    assert pick == d[9] and float(regret) == 0
    assert _find(rf"mean gap between seeds {N} points", _flat(SHAPES_TRUTH_REPORT), "its report") == (gap,)


def _assert_protocol_table(which: int, truth: dict[str, list[str]]) -> None:
    """docs/results' `which`-th table of protocols against a truth quotes the report's table."""
    seen = set()
    for row in _table(RESULTS / "README.md", "| protocol | Kendall tau vs truth (95%)", which=which):
        name = re.search(r"`(\w+)`", row[0]).group(1)
        ref = truth[name]
        tau, lo, hi = re.fullmatch(rf"{N} \[{N}, {N}\]", row[1]).groups()
        assert_quoted(tau, float(ref[4]), f"{name} tau")
        for q, v in zip((lo, hi), _interval(ref[5])):
            assert_quoted(q, v, f"{name} tau interval")
        for q, v, what in ((row[2], ref[6], "rho"), (row[3], ref[8], "one seed's tau"), (row[5], ref[10], "regret")):
            assert_quoted(q, float(v), f"{name} {what}")
        assert row[4] == ref[9], name
        seen.add(name)
    assert seen == set(truth)


def test_search_truth_table_in_the_results(results, truth, truth_set):
    _assert_protocol_table(0, truth)
    report = _flat(TRUTH_REPORT)
    rows, = _find(rf"16 architectures, {N} complete rows", report, "search_truth report")
    assert _find(rf"\*\*Not finished:\*\* {N} of 259 rows", results, "docs/results/README.md") == (rows,)
    gap, std = _find(rf"mean gap between seeds {N} points, against a standard deviation of {N} points", report,
                     "search_truth report")
    said = _find(rf"the seeds differ by {N} points on average, against a standard deviation of {N} points", results,
                 "docs/results/README.md")
    assert said == (gap, std)
    images, minutes, hours = _find(rf"The truth's cost: \d+ runs of {N}k training images, {N} wall minutes each "
                                   rf"\(median\) at 1 thread\(s\), {N} hours in all", report, "search_truth report")
    assert _find(rf"A `truth` run \({N}k training images\) took {N} wall minutes \(median\) as one of two 1-thread "
                 rf"workers side by side on this host, {N} hours", results, "docs/results/README.md") == \
        (images, minutes, hours)
    said = _find(rf"`rung2` \(2 epochs on all 50,000 images, twice a trial's images, what search.py retrains its "
                 rf"best 2 on\) gives Kendall tau {N} \[{N}, {N}\] \(one seed's {N}, against {N} for one seed of the "
                 rf"default\) and also picks (\w+) \(regret {N}\), at {N} wall minutes a run against {N}\.", results,
                 "docs/results/README.md")
    rung, d = truth["rung2"], truth["default"]
    want = (rung[4], *_bounds(rung[5]), rung[8], d[8])
    for q, v in zip(said[:5], want):
        assert_quoted(q, _num(v), "search_truth: the rung against the default")
    assert said[5] == rung[9] == d[9]   # "also picks"
    for q, v in zip(said[6:], (rung[10], rung[13], d[13])):
        assert_quoted(q, _num(v), "search_truth: the rung's regret and minutes")
    (default_min,) = _find(rf"a default run \(50k images\) {N} minutes", results, "docs/results/README.md")
    assert_quoted(default_min, float(truth["default"][13]), "search_truth: a default run's minutes")
    best, second = (float(r[3]) for r in truth_set[:2])
    top, lead = _find(rf"is the truth's best \({N}%, {N} points ahead of the second\)", results,
                      "docs/results/README.md")
    assert_quoted(top, best, "search_truth: the best truth")
    assert_quoted(lead, best - second, "search_truth: the best's lead")
    # "with the rung below the only intervals clear of 0"
    assert [p for p, r in truth.items() if _interval(r[5])[0] > 0] == ["default", "rung2"]
    said = _find(rf"every Mobile-Former \({N}-{N}%\) ends above every MobileNetV3 of the same cost \({N}-{N}%\); "
                 rf"best against best {N} points", results, "docs/results/README.md")
    ranges = (*_family_range(truth_set, "mobile_former"), *_family_range(truth_set, "mobilenet_v3"))
    for q, v in zip(said, (*ranges, ranges[1] - ranges[3])):
        assert_quoted(q, v, "search_truth: the families under the truth")


# ----------------------------------------------------------------------------- the photo-folder search

def test_photo_search_numbers_in_the_readme(readme):
    import pandas as pd
    folder = RESULTS / "photo_search"
    trials, base = pd.read_csv(folder / "trials.csv"), pd.read_csv(folder / "baselines.csv")
    confirm = pd.read_csv(folder / "confirm.csv").sort_values("final_top1", ascending=False)
    best = json.loads((folder / "best.json").read_text())
    madds, trial, rung, runner = _find(rf"the winner \({N}M\) reached {N}% in its trial and {N}% at the rung "
                                       rf"\(runner-up {N}%", readme, "README")
    winner = trials[trials["trial_id"].astype(str) == best["trial_id"]].iloc[0]
    assert_quoted(madds, winner["flops"] / 1e6, "photo winner MAdds")
    assert_quoted(trial, winner["final_top1"], "photo winner's trial top-1")
    assert_quoted(rung, confirm["final_top1"].iloc[0], "photo winner at the rung")
    assert_quoted(runner, confirm["final_top1"].iloc[1], "photo runner-up at the rung")
    assert str(confirm["confirms"].iloc[0]) == best["trial_id"]
    small, large = _find(rf"MobileNetV3-Small x1.665 at {N}% and Large x0.74 at {N}%", readme, "README")
    by_name = dict(zip(base["trial_id"].astype(str), base["final_top1"]))
    assert_quoted(small, by_name["mobilenet_v3_small_166"], "photo baseline Small")
    assert_quoted(large, by_name["mobilenet_v3_large_074"], "photo baseline Large")
    (epochs,) = _find(rf"trains each trial {N} epochs", readme, "README")
    assert (trials.loc[trials["status"] == "complete", "epochs_done"] == int(epochs)).all()


# ----------------------------------------------------------------------------- the latency profile

def test_profile_table_in_the_latency_doc():
    records = json.loads((RESULTS / "profile.json").read_text())
    by = {(r["model"], r["runtime"]): r for r in records}
    table = _table(REPO / "docs" / "latency.md", "| model | ONNX Runtime ms | torch ms |")
    header = [c.strip() for c in (REPO / "docs" / "latency.md").read_text().split(
        "| model | ONNX Runtime ms | torch ms |")[1].splitlines()[0].strip("| ").split("|")]
    assert len(table) == len({m for m, _ in by}) == 9
    for row in table:
        ort, torch_ = by[(row[0], "onnxruntime")], by[(row[0], "torch")]
        assert_quoted(row[1], ort["measured_ms"], f"{row[0]} ONNX Runtime ms")
        assert_quoted(row[2], torch_["measured_ms"], f"{row[0]} torch ms")
        for part, cell in zip(header, row[3:]):
            if cell == "-":
                assert ort["share"].get(part, 0) == 0
                continue
            time_share, madds_share = re.match(rf"{N} \({N}\)", cell).groups()
            assert_quoted(time_share, 100 * ort["share"][part], f"{row[0]} {part} time %")
            assert_quoted(madds_share, 100 * ort["madds_share"][part], f"{row[0]} {part} MAdds %")


QUALITY_REPORT = RESULTS / "search_quality" / "report.md"
SHAPES_TRUTH_REPORT = RESULTS / "search_truth_shapes" / "report.md"


def test_search_quality_in_the_results(results, truth_set):
    """The picks' table is the committed report's, and the sentences quote it."""
    head = "| arm | seed | pick MAdds"
    picks = _table(QUALITY_REPORT, head)
    assert _table(RESULTS / "README.md", head) == picks
    total, cifar, hard = _find(r"\*\*All (\d+) searches and their picks' truth are done \((\d+) on CIFAR-10, (\d+) "
                               r"on `shapes_hard`\)", results, "docs/results")
    hard_picks = _table(QUALITY_REPORT, head, which=1)
    assert _table(RESULTS / "README.md", head, which=1) == hard_picks
    assert [int(total), int(cifar), int(hard)] == [len(picks) + len(hard_picks), len(picks), len(hard_picks)]
    hard_arms = {r[0]: r for r in _table(QUALITY_REPORT, "| arm | seeds | truth top-1", which=1)}
    quoted = _find(rf"On `shapes_hard` the default's picks average {N}% under `truth`, random sampling's {N}% and "
                   rf"`before`'s {N}%", results, "docs/results")
    assert list(quoted) == [hard_arms[a][2] for a in ("default", "random", "before")]
    top1 = {(r[0], r[1]): r[5] for r in hard_picks}
    long1, long2, lo, hi, first = _find(r"`shapes_hard` default seed 1 has trials of ([\d,]+) and (\d+) s against "
                                        r"(\d+)-(\d+) s for its others, and random seed 0 has a first trial of (\d+) s",
                                        results, "docs/results")
    spread = _find(rf"MF-151M\s+fitted reached {N}% and {N}%, MobileNetV3-Large fitted {N}% and {N}%, sample00\s+"
                   rf"{N}% and {N}%\. The two seeds differ by {N} points on average, about as much as\s+the (\d+) "
                   rf"architectures differ from each other \(standard deviation {N} points", results, "docs/results")
    ref = pd.read_json(RESULTS / "search_truth_shapes" / "rows.jsonl", lines=True)
    ref = ref[(ref["protocol_name"] == "truth") & (ref["status"] == "complete")]
    top = ref.set_index(["variant", "seed"])["final_top1"]
    pairs = [(v, s) for v in ("mf151", "mnv3_large_224", "sample00") for s in (0, 1)]
    assert [float(x) for x in spread[:6]] == pytest.approx([top[k] for k in pairs], abs=0.006)   # to 2 places
    gaps = [abs(top[(v, 0)] - top[(v, 1)]) for v in ("mf151", "mnv3_large_224", "sample00")]
    assert_quoted(spread[6], sum(gaps) / 3, "shapes_hard truth: mean seed difference")
    assert int(spread[7]) == len(top.xs(0, level="seed")) == len(_table(SHAPES_TRUTH_REPORT, "| variant | family"))
    assert _find(rf"mean gap between seeds {N} points, against a standard deviation of {N} points",
                 _flat(SHAPES_TRUTH_REPORT), "search_truth_shapes report") == (spread[6], spread[8])
    regrets = _find(rf"`before`'s {N}%: regret {N}, {N} and {N} points\.\*\* The best of the (\d+) reference "
                    rf"architectures is (\w+) \({N}%\), the same architecture as on CIFAR-10", results, "docs/results")
    assert list(regrets[1:4]) == [hard_arms[a][4] for a in ("default", "random", "before")]
    best = _table(SHAPES_TRUTH_REPORT, "| variant | family")[0]
    assert [regrets[4], regrets[5], regrets[6]] == [spread[7], best[0], best[3]] and best[0] == truth_set[0][0]
    near, far = _find(rf"default seed 1's pick came within 1 point of the best \({N}\), seed 0's did not \({N}\)",
                      results, "docs/results")
    assert [near, far] == [r[6] for r in sorted(hard_picks, key=lambda r: r[1], reverse=True) if r[0] == "default"]
    assert float(near) < 1 < float(far)
    inside, outside = _find(rf"regrets \(all under (\d+) points\) are inside one seed's noise; `before`'s {N} is not",
                            results, "docs/results")
    assert max(float(r[6]) for r in hard_picks if r[0] != "before") < int(inside) < float(spread[6])
    assert outside == hard_arms["before"][4] and float(outside) > float(spread[6])
    (tau,) = _find(rf"the default protocol ranks the 16 there at Kendall tau {N} and picks the same best as on "
                   rf"CIFAR-10", results, "docs/results")
    shapes_default = next(r for r in _table(SHAPES_TRUTH_REPORT, "| protocol | kind") if r[0] == "default")
    assert tau == shapes_default[4] and shapes_default[9] == best[0]
    searches = QUALITY_REPORT.parent / "searches"
    walls = pd.read_csv(searches / "shapes_hard-default-seed1" / "trials.csv")["wall_time"].round().astype(int)
    slow = sorted(walls, reverse=True)[:2]
    assert [int(long1.replace(",", "")), int(long2)] == slow
    assert [int(lo), int(hi)] == [min(w for w in walls if w not in slow), max(w for w in walls if w not in slow)]
    assert int(first) == round(pd.read_csv(searches / "shapes_hard-random-seed0" / "trials.csv")["wall_time"][0])
    pairs = _find(rf"\(({N}) against ({N})%, ({N}) against ({N})%\)", results, "docs/results")[::2]
    assert list(pairs) == [top1[("default", "0")], top1[("random", "0")], top1[("default", "1")],
                           top1[("random", "1")]]
    beats, size, t0, t1, regret, best, best_top1 = _find(
        rf"both seeds' picks beat (\d+) of the (\d+) reference architectures under `truth` \({N} and {N}%\), "
        rf"{N} points behind the set's best \((\w+), {N}%\) on average", results, "docs/results")
    default = [r for r in picks if r[0] == "default"]
    assert {r[7] for r in default} == {beats} and int(size) == len(truth_set)
    assert [t0, t1] == [r[5] for r in default]
    arms = {r[0]: r for r in _table(QUALITY_REPORT, "| arm | seeds | truth top-1")}
    assert_quoted(regret, float(arms["default"][4]), "search_quality: the default's mean regret")
    assert [best, best_top1] == truth_set[0][:1] + truth_set[0][3:4]
    (shared,) = _find(r"Same pick, one truth training: (.+?)\.", _flat(QUALITY_REPORT), "the report")
    assert "random seed 0 picked default-seed0's architecture" in shared
    assert "Random seed 0 picked default seed 0's architecture" in results
    r_top1, r_regret, d_top1, d_regret = _find(rf"random sampling in the band with the same trials and rung averages "
                                               rf"{N}% \(regret {N}\) against the default's {N}% \({N}\)", results,
                                               "docs/results")
    assert [r_top1, r_regret, d_top1, d_regret] == [arms["random"][2], arms["random"][4], arms["default"][2],
                                                    arms["default"][4]]
    before = [r for r in picks if r[0] == "before"]
    b_picks = _find(rf"`before` seed 0 picked a {N}M model \((\d+)% of the budget\) at\s+{N}% under `truth`, {N} "
                    rf"points behind the best; seed 1 picked a {N}M model \((\d+)%\)\s+at {N}%, the best pick of the "
                    rf"six \({N} behind\)", results, "docs/results")
    assert list(b_picks) == [c for r in before for c in (r[2], r[3].rstrip("%"), r[5], r[6])]   # seeds 0, 1
    assert max(float(r[5]) for r in picks) == float(before[1][5])
    (b_top1, b_regret, gap) = _find(rf"Its mean, {N}% under `truth`, {N}\s+points behind the best, is {N} below the "
                                    r"default's", results, "docs/results")
    assert_quoted(gap, float(arms["default"][2]) - float(arms["before"][2]), "search_quality: default minus before")
    madds, top1 = _find(rf"default seed 0's search there\s+picked a {N}M model, which 32 epochs .+? under which "
                        rf"the same pick reaches {N}%", results, "docs/results")
    hard = _flat(QUALITY_REPORT).split("## shapes_hard")[1]
    assert f"| default | 0 | {madds} | " in hard and f" | {top1} | " in hard
    trained = [json.loads(r["protocol"])["epochs"] for r in map(json.loads, (QUALITY_REPORT.parent / "rows.jsonl")
               .read_text().splitlines()) if r["dataset"] == "shapes_hard"]
    assert trained and set(trained) == {16}   # the truth every shapes_hard pick was trained under
    assert [b_top1, b_regret] == [arms["before"][2], arms["before"][4]]


def test_search_quality_in_the_readme(readme):
    beats, size, regret = _find(rf"both seeds of the default search picked an architecture that beats (\d+) of "
                                rf"`search_truth`'s (\d+) under long training, {N} points behind the best on average",
                                readme, "README")
    picks = [r for r in _table(QUALITY_REPORT, "| arm | seed | pick MAdds") if r[0] == "default"]
    arms = {r[0]: r for r in _table(QUALITY_REPORT, "| arm | seeds | truth top-1")}
    assert len(picks) == 2 and {r[7] for r in picks} == {beats} and f"beats (of {size})" in QUALITY_REPORT.read_text()
    assert_quoted(regret, float(arms["default"][4]), "search_quality: the default's mean regret")
    random, before, fill, worst, best = _find(
        rf"random sampling in the band did no worse \({N}\s+behind\), and the default before the band, {N} behind "
        rf"on average, picked a model at (\d+)% of\s+the budget at one seed \({N} behind\) and the study's best pick "
        rf"at the other \({N} behind\)", readme, "README")
    assert_quoted(random, float(arms["random"][4]), "search_quality: random sampling's mean regret")
    assert_quoted(before, float(arms["before"][4]), "search_quality: the default before the band's regret")
    every = _table(QUALITY_REPORT, "| arm | seed | pick MAdds")
    b = sorted((float(r[6]), r[3]) for r in every if r[0] == "before")
    assert [best, worst, f"{fill}%"] == [f"{b[0][0]:.2f}", f"{b[-1][0]:.2f}", b[-1][1]]
    assert b[0][0] == min(float(r[6]) for r in every)
    hard = {r[0]: r for r in _table(QUALITY_REPORT, "| arm | seeds | truth top-1", which=1)}
    quoted = _find(rf"On `shapes_hard` the default's picks average {N}% under long training, random\s+sampling's {N}% "
                   rf"and the default before the band's {N}%: {N}, {N} and {N} points behind the best of "
                   rf"`search_truth_shapes`' (\d+),", readme, "README")
    arms = ("default", "random", "before")
    assert list(quoted[:6]) == [hard[a][2] for a in arms] + [hard[a][4] for a in arms]
    assert f"beats (of {quoted[6]})" in QUALITY_REPORT.read_text().split("## shapes_hard")[1]
    (seed_gap,) = _find(rf"that truth's two seeds of one architecture differ by {N} points on average, so only the "
                        rf"gap to the default before the band is larger than one seed's noise", readme, "README")
    assert seed_gap in _flat(RESULTS / "README.md")
    regrets = {a: float(hard[a][4]) for a in arms}
    assert regrets["before"] > float(seed_gap) > max(regrets["default"], regrets["random"])


FRONT_REPORT = RESULTS / "latency_front" / "shapes" / "report.md"
SEEDS_REPORT = RESULTS / "latency_front" / "shapes" / "seeds" / "report.md"


def _front_points() -> dict[str, list[str]]:
    """latency_front's front points by the seeds study's variant name: the report's latency row
    (model, MAdds, latency, p10-p90, top-1, ...) and the seeds report's row."""
    rows = _table(FRONT_REPORT, "| front | model | MAdds (M) | latency (ms)")
    out = {}
    for r in rows:
        run, _, trial = r[1].partition(" / ")
        name = (f"mf_{run.replace('mobile_former', 'mf').replace('-', '_')}_t{trial}" if trial
                else r[1].replace("mobilenet_v3_", "mnv3_"))
        out[name] = r
    return out


def test_latency_front_in_the_results(results):
    """Each row of the results' latency_front table is a front point of the committed search
    report (MAdds, latency, seed-0 top-1) and of the seeds report (params, mean ± std, truth)."""
    points, seeds, truth = _front_points(), _seeds_rows("default"), _seeds_rows("truth")
    table = _table(RESULTS / "README.md", "| front point | space |")
    assert len(table) == len(seeds) == len(truth) == 9
    for row, name in zip(table, seeds):
        point, seed = points[name], seeds[name]
        assert [row[2], row[4], row[5]] == [point[2], point[3], point[5]], (name, row, point)
        assert [row[3], row[6], row[7]] == [seed[3], f"{seed[4]} ± {seed[5]}", truth[name][4]], (name, row, seed)
        assert row[8] == point[8] and (("mf_cpu" in name) == (row[1] == "`mobile_former_cpu`"))
    fast = seeds["mf_200M_mf_cpu_t13"]
    mean, std, slow_mean, slow_std = _find(rf"at 1.24 ms averages {N} ± {N}% over 3 seeds, where MobileNetV3-Small "
                                           rf"reaches {N} ± {N}% at 2.66 ms", results, "docs/results")
    assert [mean, std, slow_mean, slow_std] == [fast[4], fast[5], *seeds["mnv3_small_111"][4:6]]
    quoted = _find(rf"model reaches {N}%, just behind MobileNetV3-Small-0.61 at 1.11 ms \({N}%\), which is both faster "
                   rf"and higher, and far from the 2.66 ms one \({N}%\).+?from 0.97 ms, where it reaches {N}% and "
                   rf"MobileNetV3's best so far is Small-0.40's {N}% at 0.86 ms, up to 1.11 ms; and from 3.26 ms, "
                   rf"where today's space reaches {N}% against MobileNetV3-Small-1.30's {N}%", results, "docs/results")
    assert list(quoted) == [truth[n][4] for n in ("mf_200M_mf_cpu_t13", "mnv3_small_061", "mnv3_small_111",
                                                 "mf_50M_mf_cpu_t14", "mnv3_small_040", "mf_200M_mf_t15",
                                                 "mnv3_small_130")]
    tau, lo, hi = _find(rf"The proxy ranks these 9 points like the truth at Kendall tau {N} \[{N}, {N}\]", results,
                        "docs/results")
    assert f"Kendall tau {tau} [{lo}, {hi}]" in SEEDS_REPORT.read_text()


@pytest.mark.parametrize("size, label", [("shapes", "`shapes`"), ("cifar10", "CIFAR-10")])
def test_latency_front_hypervolume_in_the_results(results, size, label):
    """Each size's hypervolume in latency, its reference point and front sizes, as its report has them."""
    report = RESULTS / "latency_front" / size / "report.md"
    (ref,) = re.findall(r"area dominated up to \((\S+) ms, 0 %\)", report.read_text())
    rows = {r[0]: r for r in _table(report, "| front | hypervolume (ms x %) | points |")}
    assert _find(rf"\*\*Hypervolume in latency\*\* \({label}; the area each front dominates up to \({N} ms, 0%\), "
                 rf"the slowest model measured; ms x proxy top-1 %\): Mobile-Former {N} over (\d+) front points, "
                 rf"MobileNetV3 {N} over (\d+)", results, "docs/results/README.md") == (
        ref, *rows["Mobile-Former"][1:], *rows["MobileNetV3"][1:])


def test_latency_front_cifar10_params_in_the_results(results):
    """The CIFAR-10 fronts in parameters: every MobileNetV3 point is beaten by a smaller, better
    Mobile-Former, and the two ends quoted are the report's."""
    rows = _table(LF_CIFAR_SEARCH / "report.md", "| front | model | params (M) | MAdds (M) | top-1 (%) |")
    mf = sorted((r for r in rows if r[0] == "Mobile-Former"), key=lambda r: float(r[2]))
    mn = sorted((r for r in rows if r[0] == "MobileNetV3"), key=lambda r: float(r[2]))
    assert all(any(float(m[2]) < float(b[2]) and float(m[4]) > float(b[4]) for m in mf) for b in mn)
    first = next(b for b in mn if float(b[4]) >= float(mf[0][4]))
    best_mf, best_mn = max(mf, key=lambda r: float(r[4])), max(mn, key=lambda r: float(r[4]))
    name = lambda r: f"{r[1][-3]}.{r[1][-2:]}"   # mobilenet_v3_small_130 -> 1.30
    assert _find(rf"smallest point, {N}M parameters, reaches {N}%, which MobileNetV3 first reaches with\s?{N}M "
                 rf"\(Small-(\S+), {N}%\); its best, {N}M, reaches {N}%, where MobileNetV3's best,\s?Small-(\S+), "
                 rf"has {N}M for {N}%", results, "docs/results/README.md") == (
        mf[0][2], mf[0][4], first[2], name(first), first[4], best_mf[2], best_mf[4], name(best_mn), best_mn[2],
        best_mn[4])
    assert all("small" in r[1] for r in (first, best_mn))


def _seeds_rows(protocol: str) -> dict[str, list[str]]:
    """The seeds report's rows of one protocol, by variant."""
    return {r[1]: r for r in _table(SEEDS_REPORT, "| protocol | variant |") if r[0] == protocol}


def test_latency_front_in_the_readme(readme):
    seeds, truth = _seeds_rows("default"), _seeds_rows("truth")
    points = _front_points()
    madds, ms, mean, std, mb_ms, mb_mean, mb_std, today = _find(
        rf"a {N}M-MAdds model at {N} ms averages {N} ± {N}% \(3 seeds\) under the proxy, where MobileNetV3-Small "
        rf"needs {N} ms for {N} ± {N}%; today's space has nothing under {N} ms", readme, "README")
    fast, small = points["mf_200M_mf_cpu_t13"], points["mnv3_small_130"]
    assert [madds, ms, mean, std] == [fast[2], fast[3], *seeds["mf_200M_mf_cpu_t13"][4:6]]
    assert [mb_ms, mb_mean, mb_std] == [small[3], *seeds["mnv3_small_130"][4:6]]
    # every model today's space trained, not only its front points
    trained = pd.concat(pd.read_csv(f)
                        for f in (RESULTS / "latency_front" / "shapes").glob("*M-mobile_former/trials.csv"))
    assert_quoted(today, trained.loc[trained["status"] == "complete", "latency_ms"].min(), "today's fastest")
    long_mf, long_mb = _find(rf"the 1.24 ms model reaches {N}%, just behind MobileNetV3-Small at 1.11 ms \({N}%\)",
                             readme, "README")
    assert [long_mf, long_mb] == [truth["mf_200M_mf_cpu_t13"][4], truth["mnv3_small_061"][4]]


# ----------------------------------------------------------------------------- links

def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", ["README.md", "docs/cli.md", "docs/library.md", "docs/results/README.md",
                                 "docs/analysis.md", "docs/data.md", "docs/detection.md", "docs/latency.md"])
def test_links_and_figures_resolve(doc):
    """Every relative link and figure of the documentation points at a file that exists, and
    every #anchor at a heading of its file (the results and CLI moved out of the README)."""
    path = REPO / doc
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)   # code blocks hold no links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{doc}: {target} does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", dest.read_text(), flags=re.S), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{doc}: no heading for #{anchor} in {dest.name}"



def test_search_truth_shapes_in_the_results(results):
    """The shapes_hard truth section quotes its report: the protocol table, the first picks, the
    seed spread and the families."""
    report = _flat(SHAPES_TRUTH_REPORT)
    truth = {r[0]: r for r in _table(SHAPES_TRUTH_REPORT, "| protocol | kind | n | seeds | Kendall tau")}
    _assert_protocol_table(1, truth)
    archs = _table(SHAPES_TRUTH_REPORT, "| variant | family | MAdds (M) | truth top-1")
    (rows,) = _find(r"16 architectures, (\d+) complete rows", report, "search_truth_shapes report")
    assert _find(r"All (\d+) rows are done", results, "docs/results/README.md") == (rows,)
    assert int(rows) == len(pd.read_json(RESULTS / "search_truth_shapes" / "rows.jsonl", lines=True))
    said = _find(rf"default protocol ranks the 16 at Kendall tau {N} \[{N}, {N}\] and the rung at {N} \[{N}, {N}\], "
                 rf"the only intervals clear of 0; both first picks are (\w+), the truth's best at {N}% \({N} points "
                 rf"ahead of the second\), as on CIFAR-10\. MAdds, parameters and the 0-epoch scores rank them at {N} "
                 rf"to {N}\.", results, "docs/results/README.md")
    d, rung = truth["default"], truth["rung2"]
    assert list(said[:6]) == [d[4], *_bounds(d[5]), rung[4], *_bounds(rung[5])]
    assert [p for p, r in truth.items() if _interval(r[5])[0] > 0] == ["default", "rung2"]
    assert said[6] == d[9] == rung[9] == archs[0][0] and said[7] == archs[0][3]
    assert_quoted(said[8], float(archs[0][3]) - float(archs[1][3]), "search_truth_shapes: the best's lead")
    others = [float(truth[p][4]) for p in ("madds", "params", "synflow", "grad_norm", "naswot")]
    assert [_num(said[9]), _num(said[10])] == [min(others), max(others)]
    gap, std = _find(rf"mean gap between seeds {N} points, against a standard deviation of {N} points", report,
                     "search_truth_shapes report")
    cifar = _find(rf"mean gap between seeds {N} points, against a standard deviation of {N} points",
                  _flat(TRUTH_REPORT), "search_truth report")
    assert _find(rf"two seeds the seeds differ by {N} points on average, against a standard deviation of {N} points "
                 rf"between architectures \(on CIFAR-10: {N} against {N}\)", results,
                 "docs/results/README.md") == (gap, std, *cifar)
    mf_best, lead, mn_best, below, total, lo, hi, mf151 = _find(
        rf"the best Mobile-Former \(\w+, {N}%\) is {N} points ahead of the best MobileNetV3 \(Large at 192 px, {N}%\), "
        rf"but (\d+) of the (\d+) Mobile-Formers end below it \({N}-{N}%\), MF-151M fitted among them \({N}%",
        results, "docs/results/README.md")
    mf = [r for r in archs if r[1] == "mobile_former"]
    mn = [r for r in archs if r[1] == "mobilenet_v3"]
    assert [mf_best, mn_best] == [mf[0][3], mn[0][3]] and mn[0][0] == "mnv3_large_192"
    assert_quoted(lead, float(mf[0][3]) - float(mn[0][3]), "search_truth_shapes: best against best")
    under = [float(r[3]) for r in mf if float(r[3]) < float(mn[0][3])]
    assert [int(below), int(total)] == [len(under), len(mf)]
    assert [float(lo), float(hi)] == [min(under), max(under)]
    assert mf151 == next(r[3] for r in archs if r[0] == "mf151")


LF_CIFAR = RESULTS / "latency_front_shapes_cifar"


def test_latency_front_shapes_cifar_in_the_results(readme, results):
    """The unfinished CIFAR-10 retraining of the shapes front: the rows said done are the
    committed rows, and every truth top-1, gap and speed quoted is its report's or its rows'."""
    from mfsearch.studies import load_study
    rows = pd.read_json(LF_CIFAR / "rows.jsonl", lines=True)
    jobs = len(load_study(REPO / "experiments" / "latency_front_shapes_cifar.yaml", "full").jobs())
    assert _find(r"\*\*Not finished:\*\* (\d+) of (\d+) rows, all under `truth`", results,
                 "docs/results/README.md") == (str(len(rows)), str(jobs))
    assert _find(r"`latency_front_shapes_cifar`, (\d+) of (\d+) runs so far, on a GPU\)", readme,
                 "README") == (str(len(rows)), str(jobs))
    assert set(rows["protocol_name"]) == {"truth"} and set(rows["device"]) == {"cuda"}
    speed = rows.groupby(rows["variant"].str.startswith("mf_"))["images_per_s"]
    said = _find(r"\(([\d,]+) img/s for the Mobile-Former, ([\d,]+)-([\d,]+) for the MobileNetV3-Small", results,
                 "docs/results/README.md")
    assert [float(x.replace(",", "")) for x in said] == pytest.approx(
        [speed.median()[True], speed.min()[False], speed.max()[False]], abs=10)
    report = {(r[0], r[1]): r for r in _table(LF_CIFAR / "report.md", "| protocol | variant |")}
    top1 = {v: float(report[("truth", v)][4]) for v in ("mf_200M_mf_cpu_t13", "mnv3_small_040", "mnv3_small_061",
                                                        "mnv3_small_083")}
    mf = report[("truth", "mf_200M_mf_cpu_t13")]
    assert _find(rf"\| Mobile-Former 200M / 13 \(`mobile_former_cpu`, 10\.4M MAdds\) \| 1\.24 \| {N} \| "
                 r"1 \(seed 1\) \|", results, "docs/results/README.md") == (mf[4],) and mf[6] == "1"
    for variant, width, ms in (("mnv3_small_040", "0.40", "0.86"), ("mnv3_small_061", "0.61", "1.11"),
                               ("mnv3_small_083", "0.83", "1.46")):
        row = report[("truth", variant)]
        assert _find(rf"\| MobileNetV3-Small {re.escape(width)} \| {re.escape(ms)} \| {N} ± {N} \| 2 \|", results,
                     "docs/results/README.md") == (row[4], row[5]) and row[6] == "2"
    gaps = _find(rf"The 1\.24 ms Mobile-Former is {N} points above MobileNetV3-Small at 1\.46 ms and {N} above",
                 results, "docs/results/README.md")
    assert [float(g) for g in gaps] == pytest.approx([top1["mf_200M_mf_cpu_t13"] - top1["mnv3_small_083"],
                                                      top1["mf_200M_mf_cpu_t13"] - top1["mnv3_small_061"]], abs=0.05)
    assert _find(rf"model reaches {N}% \(one seed\) against {N}% and {N}% \(two seeds each\)", readme,
                 "README") == (mf[4], report[("truth", "mnv3_small_061")][4], report[("truth", "mnv3_small_083")][4])


LF_CIFAR_SEARCH = RESULTS / "latency_front" / "cifar10"


def _trials(search: str, trained: bool = False) -> pd.DataFrame:
    """One CIFAR-10 latency_front search's trials.csv, or only the models it trained."""
    t = pd.read_csv(LF_CIFAR_SEARCH / search / "trials.csv")
    return t[t["status"] == "complete"] if trained else t


def test_latency_front_cifar10_in_the_results(readme, results):
    """The CIFAR-10 latency front: the searches said finished are the committed
    ones, and every point, gap and boundary quoted is its report's (or its searches' files)."""
    import datetime as dt
    meta = json.loads((LF_CIFAR_SEARCH / "run.json").read_text())
    runs = {s: json.loads((LF_CIFAR_SEARCH / s / "run.json").read_text()) for s in meta["searches"]
            if (LF_CIFAR_SEARCH / s / "run.json").is_file()}
    finished = [s for s, r in runs.items() if r["status"] == "finished"]
    where = "docs/results/README.md"
    said = _find(r"\*\*Finished:\*\* (\d+) of (\d+) searches", results, where)
    assert said == (str(len(finished)), str(len(meta["searches"]))) and said[0] == said[1]
    assert _find(r"\(`latency_front --size full`, (\d+) of (\d+) searches\)", readme, "README") == said
    for s in finished:   # each search's own minutes, start to finish
        minutes = (dt.datetime.fromisoformat(runs[s]["finished"])
                   - dt.datetime.fromisoformat(runs[s]["started"])).total_seconds() / 60
        assert _find(rf"{s} (\d+)", results, where) == (f"{minutes:.0f}",)
        assert bool(runs[s].get("resumed")) == (f"{s} {minutes:.0f} (resumed" in results)
    trials = pd.concat(pd.read_csv(LF_CIFAR_SEARCH / s / "trials.csv") for s in finished)
    assert _find(r"(\d+) proposals, (\d+) trained, (\d+) over their MAdds\s?budget", results, where) == (
        str(len(trials)), str((trials["status"] == "complete").sum()), str((trials["status"] == "infeasible").sum()))
    base = pd.concat(pd.read_csv(LF_CIFAR_SEARCH / s / "baselines.csv") for s in finished).set_index("trial_id")
    shapes = pd.read_csv(RESULTS / "latency_front" / "shapes" / "50M-mobile_former" / "baselines.csv")
    assert _find(rf"MobileNetV3-Small 0\.40: {N} ms here in\s?the search, {N} ms there", results, where) == (
        f"{base.loc['mobilenet_v3_small_040', 'latency_ms'].iloc[0]:.2f}",
        f"{shapes.set_index('trial_id').loc['mobilenet_v3_small_040', 'latency_ms']:.2f}")
    front = _table(LF_CIFAR_SEARCH / "report.md", "| front | model | MAdds (M) | latency (ms)")
    mf = sorted((r for r in front if r[0] == "Mobile-Former"), key=lambda r: float(r[3]))
    mn = sorted((r for r in front if r[0] == "MobileNetV3"), key=lambda r: float(r[3]))
    fast, best = mf[0], max(mn, key=lambda r: float(r[5]))
    assert float(fast[3]) < float(mn[0][3]) and float(fast[5]) > float(best[5])   # above the whole front
    cfg = json.loads((LF_CIFAR_SEARCH / "front" / "mf_200M_mf_cpu_t13.json").read_text())
    assert fast[1] == "200M-mobile_former_cpu / 13" and mn[0][1] == "mobilenet_v3_small_040"
    assert _find(rf"front\*\*: 200M / 13 \({N}M MAdds, designed for (\d+) px\) at {N} ms reaches {N}%, where the "
                 rf"fastest MobileNetV3, Small-0\.40, takes {N} ms \({N}%\) and the best, Small-(\S+), reaches "
                 rf"{N}% at {N} ms \(on the 300M searches' host\)\. The merged Mobile-Former front is now "
                 rf"(\d+) points: it,\s?(\S+ / \d+) \({N} ms, {N}%\), today's space's (\S+ / \d+) \({N} ms, {N}%\) "
                 rf"and (\S+ / \d+)\s?\({N} ms on the 300M searches' host, {N}%\)", results, where) == (
        fast[2], str(cfg["resolution"]), fast[3], fast[5], mn[0][3], mn[0][5],
        f"{best[1][-3]}.{best[1][-2:]}", best[5], best[3], str(len(mf)),
        mf[1][1].replace("-mobile_former_cpu", ""), mf[1][3], mf[1][5],
        mf[2][1].replace("-mobile_former", ""), mf[2][3], mf[2][5],
        mf[3][1].replace("-mobile_former_cpu", ""), mf[3][3], mf[3][5])
    assert "cpu" in mf[1][1] and "cpu" not in mf[2][1] and mf[3][1].startswith("300M-mobile_former_cpu")
    assert len(mf) == 4 and base.loc[[best[1]]].iloc[0]["run"].startswith("300M")
    kept = re.match(r"dyReLU (\d+)/(\d+), bridges (\d+)/\d+ on (\d+) tokens, head x(\d+)", fast[8]).groups()
    assert _find(rf"dynamic ReLU in (\d+) of its (\d+) blocks, the\s?bridges in (\d+), on (\d+) token, and a x(\d+) "
                 rf"head; a near-pure mobile stack of (\d+) blocks after the\s?lite one, width x{N}", results, where) \
        == (*kept, str(sum(b[0] != "lite" for b in cfg["blocks"])), str(cfg["width_mult"]))
    assert all(json.loads((LF_CIFAR_SEARCH / "front" / f"mnv3_{r[1][13:]}.json").read_text())["resolution"] == 224
               for r in mn)
    large = [base.loc[[m]].iloc[0] for m in ("mobilenet_v3_large_041", "mobilenet_v3_large_055",
                                             "mobilenet_v3_large_074", "mobilenet_v3_large_090")]
    assert _find(rf"Large-0\.41, -0\.55, -0\.74 and -0\.90 at {N}, {N}, {N} and {N} ms reach {N}%, {N}%,\s?{N}% "
                 rf"and {N}%", results, where) == (
        *(f"{b['latency_ms']:.2f}" for b in large), *(f"{b['final_top1']:.2f}" for b in large))
    assert all(b["final_top1"] < base.loc[["mobilenet_v3_small_083"]].iloc[0]["final_top1"] for b in large)


def test_latency_front_cifar10_200m_search_in_the_results(results):
    """What the 200M search in today's space trained, as its trials.csv has it."""
    t, done = _trials("200M-mobile_former"), _trials("200M-mobile_former", trained=True)
    best = done.loc[done["final_top1"].idxmax()]
    front = _table(LF_CIFAR_SEARCH / "report.md", "| front | model | MAdds (M) | latency (ms)")
    assert not any(r[1].startswith("200M-mobile_former /") for r in front)
    where = "docs/results/README.md"
    assert _find(rf"It trained (\d+) of its (\d+)\s?proposals, at {N}-{N} ms; its best, {N}% at {N}M MAdds, takes "
                 rf"{N} ms", results, where) == (
        str(len(done)), str(len(t)), f"{done['latency_ms'].min():.2f}", f"{done['latency_ms'].max():.2f}",
        f"{best['final_top1']:.2f}", f"{best['flops'] / 1e6:.1f}", f"{best['latency_ms']:.2f}")
    assert (done["lite_stride"] == 1).all() and (done["channels"] == done.iloc[0]["channels"]).all()
    first = done.loc[done["trial_id"].astype(int).idxmin()]
    assert _find(rf"lite stride of its first\s?trial \({N}%\)", results, where) == (f"{first['final_top1']:.2f}",)
    t100 = _trials("100M-mobile_former", trained=True)
    assert _find(r"in the 100M search, (\d+) of its (\d+) trained models: stride 2", results, where) == (
        str((t100["lite_stride"] == 2).sum()), str(len(t100)))
    big = done[done["flops"] > 90e6]
    assert _find(rf"the (\d+) above 90M MAdds, at (\d+)-(\d+)\s?px, took {N}-{N} ms", results, where) == (
        str(len(big)), str(big["resolution"].min()), str(big["resolution"].max()),
        f"{big['latency_ms'].min():.2f}", f"{big['latency_ms'].max():.2f}")


def test_latency_front_cifar10_300m_searches_in_the_results(results):
    """What the 300M searches found (and did not), as their files have it, and the second
    host's baselines against the first's: the same top-1, other milliseconds."""
    from mfsearch.analysis.latency import global_part
    where = "docs/results/README.md"
    done = _trials("300M-mobile_former_cpu", trained=True)
    best, fast = done.loc[done["final_top1"].idxmax()], done.loc[done["latency_ms"].idxmin()]
    cfg = json.loads((LF_CIFAR_SEARCH / "front" / f"mf_300M_mf_cpu_t{best['trial_id']}.json").read_text())
    everything = pd.concat(pd.read_csv(f) for f in LF_CIFAR_SEARCH.glob("*M-mobile_former*/trials.csv"))
    assert best["final_top1"] == everything["final_top1"].max()   # "the highest top-1 in the study"
    today = _trials("300M-mobile_former", trained=True)
    top = today.loc[today["final_top1"].idxmax()]
    front = _table(LF_CIFAR_SEARCH / "report.md", "| front | model | MAdds (M) | latency (ms)")
    t13 = next(r for r in front if r[1] == "200M-mobile_former_cpu / 13")
    at200 = _trials("200M-mobile_former", trained=True)
    assert not any(r[1].startswith("300M-mobile_former /") for r in front)
    assert _find(rf"It trained (\d+) of its (\d+)\s?proposals, at {N}-{N} ms; its best, {N}% at {N}M MAdds, takes "
                 rf"{N} ms, where\s?`mobile_former_cpu`'s 200M / 13 reaches {N}% at {N} ms\. (\d+) of the (\d+) have "
                 rf"their lite\s?block at stride 1 \(at 200M: (\d+) of (\d+)\)", results, where) == (
        str(len(today)), str(len(_trials("300M-mobile_former"))), f"{today['latency_ms'].min():.2f}",
        f"{today['latency_ms'].max():.2f}",
        f"{top['final_top1']:.2f}", f"{top['flops'] / 1e6:.1f}", f"{top['latency_ms']:.2f}", t13[5], t13[3],
        str((today["lite_stride"] == 1).sum()), str(len(today)), str((at200["lite_stride"] == 1).sum()),
        str(len(at200)))
    dyrelu, blocks, bridges, tokens, head = re.match(
        r"dyReLU (\d+)/(\d+), bridges (\d+)/\d+ on (\d+) tokens, head x(\d+)", global_part(best["config"])).groups()
    assert _find(rf"Its best, 300M / (\d+) \({N}M MAdds, (\d+) px\), reaches {N}%, the highest\s?top-1 in the study, "
                 rf"at {N} ms on its host; it kept dynamic ReLU in (\d+) of its (\d+) blocks after\s?the lite one, but "
                 rf"the bridges and the Former in only the last, on (\d+) tokens, and a x(\d+) head\s?\({N}M "
                 rf"parameters, width x{N}\)\. The fastest model it trained takes {N} ms \({N}%\)", results, where) == (
        str(best["trial_id"]), f"{best['flops'] / 1e6:.1f}", str(best["resolution"]), f"{best['final_top1']:.2f}",
        f"{best['latency_ms']:.2f}", dyrelu, blocks, tokens, head, f"{best['params'] / 1e6:.2f}",
        str(cfg["width_mult"]), f"{fast['latency_ms']:.2f}", f"{fast['final_top1']:.2f}")
    assert bridges == "1" and cfg["blocks"][-1][-1] == {"tokens": int(tokens)}   # only the last block bridges
    new = pd.read_csv(LF_CIFAR_SEARCH / "300M-mobile_former_cpu" / "baselines.csv").set_index("trial_id")
    old = pd.concat(pd.read_csv(f) for f in LF_CIFAR_SEARCH.glob("*M-mobile_former*/baselines.csv")
                    if not f.parent.name.startswith("300M"))
    old = old.drop_duplicates("trial_id").set_index("trial_id")
    both = new.merge(old, left_index=True, right_index=True, suffixes=("", "_old"))
    top1, ratio = [f"{x:.2f}" for x in both["final_top1"]], both["latency_ms_old"] / both["latency_ms"]
    assert _find(rf"the (\d+) MobileNetV3 baselines both trained reach the same top-1: ([\d., and]+)%\)\s?but times "
                 rf"them {N}-{N}x faster \(MobileNetV3-Small 1\.11: {N} ms there, {N} ms\s?here\)", results, where) == (
        str(len(both)), ", ".join(top1[:-1]) + f" and {top1[-1]}", f"{ratio.min():.2f}", f"{ratio.max():.2f}",
        *(f"{b.loc['mobilenet_v3_small_111', 'latency_ms']:.2f}" for b in (new, old)))
    assert (both["final_top1"] == both["final_top1_old"]).all()


def test_latency_front_cifar10_front_configs_are_the_analysis(tmp_path):
    """front/ holds what analyze.py writes for the committed searches: one config per front
    point, byte for byte, so the files the seeds study and the re-timing name are the report's."""
    from mfsearch.analysis.latency import write_front_configs
    from mfsearch.analysis.load import load_runs
    meta = json.loads((LF_CIFAR_SEARCH / "run.json").read_text())
    runs = [LF_CIFAR_SEARCH / s for s in meta["searches"] if (LF_CIFAR_SEARCH / s / "trials.parquet").is_file()]
    space = {r: (json.loads((r / "run.json").read_text())["settings"]["space"] or {}).get("space", "mobile_former")
             for r in runs}   # none recorded: today's space
    for sub in ("", "mobile_former", "mobile_former_cpu"):   # the merged report's, and each space's
        members = [r for r in runs if space[r] == sub] if sub else runs
        written = write_front_configs(load_runs(members), tmp_path / sub)
        committed = sorted((LF_CIFAR_SEARCH / sub / "front").glob("*.json"))
        assert [p.name for p in sorted(written)] == [p.name for p in committed] and len(committed) >= 3
        assert all(p.read_text() == (tmp_path / sub / "front" / p.name).read_text() for p in committed)


def _retimed() -> dict[str, list[float]]:
    """The CIFAR-10 front points timed again: each config file's stem and its passes' medians (ms)."""
    return {Path(r["model"]).stem: [p["median_ms"] for p in r["onnxruntime"]]
            for r in json.loads((LF_CIFAR_SEARCH / "retimed.json").read_text())}


def _pass_spread(passes: dict[str, list[float]]) -> float:
    """The most one model's re-timed passes differ: slowest over fastest."""
    return max(max(v) / min(v) for v in passes.values())


def test_latency_front_cifar10_retimed_in_the_results(results):
    """The front points and the MobileNetV3-Small widths between them timed again: the counts
    and spreads quoted are the committed records'."""
    retimed, front = _retimed(), sorted(p.stem for p in (LF_CIFAR_SEARCH / "front").glob("*.json"))
    extra = set(retimed) - set(front)   # beside every front point: the seeds study's other models
    assert set(front) <= set(retimed) and extra == set(_seeds_cifar_variants()) - set(front)
    assert {"mnv3_small_061", "mnv3_small_083"} <= extra
    (k,) = {len(v) for v in retimed.values()}
    spread = _pass_spread(retimed)
    fastest = Counter(min(range(len(v)), key=v.__getitem__) + 1 for v in retimed.values())
    ((top_pass, n),) = fastest.most_common(1)
    where = "docs/results/README.md"
    assert _find(rf"The {N} front points and the seeds study's {N} other models timed again\s?in one sitting, "
                 rf"{N}\s?interleaved passes", results, where) == (str(len(front)), str(len(extra)), str(k))
    assert _find(rf"one model's {N} passes differ by up to {N}x, and the passes move together: {N} of the {N} "
                 rf"models are\s?fastest in pass {N}", results, where) == \
        (str(k), f"{spread:.2f}", str(n), str(len(retimed)), str(top_pass))


def _seeds_cifar_variants() -> list[str]:
    """The seeds study's variants (front config files' stems), in its report's order."""
    return list(dict.fromkeys(r[1] for r in _table(LF_CIFAR_SEARCH / "seeds" / "report.md", "| protocol | variant |")))


def _seeds_cifar_rows() -> list[list[str]]:
    """The docs' latency_front_seeds_cifar table as its committed files give it: each variant's
    MAdds, params, latency in the search, the median (and range) of the re-timed passes, the
    seeds report's top-1 under both protocols, and what each Mobile-Former kept."""
    import statistics

    from mfsearch.analysis.latency import front_file, global_part
    report = {(r[0], r[1]): r for r in _table(LF_CIFAR_SEARCH / "seeds" / "report.md", "| protocol | variant | MAdds")}
    searches = [LF_CIFAR_SEARCH / s for s in json.loads((LF_CIFAR_SEARCH / "run.json").read_text())["searches"]
                if (LF_CIFAR_SEARCH / s / "trials.csv").is_file()]
    trials = pd.concat(pd.read_csv(p / "trials.csv") for p in searches)
    base = pd.concat(pd.read_csv(p / "baselines.csv") for p in searches)
    base = base.drop_duplicates("trial_id").set_index("trial_id")
    points = {front_file(r, False): r for _, r in trials.iterrows()} | \
        {front_file(r, True): r for _, r in base.reset_index().iterrows()}   # by their front/ file names
    retimed, out = _retimed(), []
    for variant in _seeds_cifar_variants():
        ps, d, t = retimed[variant], report[("default", variant)], report.get(("truth", variant))
        if "_r" in variant:   # a control: a baseline's width at another resolution, in no search
            width, res = variant.split("_")[2], variant.rsplit("_r", 1)[1]
            head, kept, searched = [f"MobileNetV3-Small {int(width) / 100:.2f} at {res} px", ""], "", "n/a"
        else:
            s = points[variant]
            assert float(d[2]) == pytest.approx(s["flops"] / 1e6, abs=0.05)
            searched = f"{s['latency_ms']:.2f}"
            if variant.startswith("mf_"):
                space = "`mobile_former_cpu`" if "mobile_former_cpu" in s["run"] else "today's"
                head = [f"Mobile-Former {s['run'].split('-')[0]} / {s['trial_id']}", space]
                kept = global_part(s["config"])
            else:
                head, kept = [f"MobileNetV3-Small {int(variant[-3:]) / 100:.2f}", ""], ""
        assert d[6] == "3"
        truth = "n/a" if t is None else f"{t[4]} ± {t[5]} ({t[6]})" if t[6] != "1" else f"{t[4]} (1)"
        out.append([*head, d[2], d[3], searched,
                    f"{statistics.median(ps):.2f} ({min(ps):.2f}-{max(ps):.2f})", f"{d[4]} ± {d[5]}", truth, kept])
    return out


def _first_four(rows: list[list[str]]) -> list[list[str]]:
    """The table's rows from before the 200M searches (the points the first verdict compared)."""
    return [r for r in rows if not r[0].startswith("Mobile-Former 200M") and " px" not in r[0]]


def test_latency_front_seeds_cifar_in_the_results(results):
    """Every cell of the CIFAR-10 front points' table is its committed files'."""
    table = _table(RESULTS / "README.md", "| CIFAR-10 front point |")
    assert table == _seeds_cifar_rows() and len(table) == 13 and len(_first_four(table)) == 10


def test_latency_front_seeds_cifar_verdict_in_the_results(results, readme):
    """The verdict's numbers are the table's and the passes': the fastest Mobile-Former
    re-timed and the MobileNetV3 under it, the best Mobile-Former under truth against
    Small-1.11 and -1.30, pass-by-pass wins, what that model kept, today's space's fastest
    points, and the seeds report's rank agreement."""
    every, passes = _seeds_cifar_rows(), _retimed()
    file = dict(zip((r[0] for r in every), _seeds_cifar_variants()))
    rows = _first_four(every)
    med = lambda r: f"{float(r[5].split()[0]):.2f}"            # noqa: E731
    span = lambda r: [float(x) for x in r[5].split()[1].strip("()").split("-")]   # noqa: E731
    tr = lambda r: float(r[7].split()[0])                         # noqa: E731
    px = lambda r: float(r[6].split()[0])                         # noqa: E731
    faster = lambda a, b: str(sum(x < y for x, y in zip(passes[file[a[0]]], passes[file[b[0]]])))  # noqa: E731
    mf = [r for r in rows if r[0].startswith("Mobile-Former")]
    mn = {r[0][-4:]: r for r in rows if r[0].startswith("MobileNetV3")}
    fast, best = min(mf, key=lambda r: float(med(r))), max(mf, key=tr)
    slow = sorted((r for r in mn.values() if float(med(r)) < float(med(fast))), key=lambda r: float(med(r)))
    s111, s130, where = mn["1.11"], mn["1.30"], "docs/results/README.md"
    assert [r[0][-4:] for r in slow] == ["0.40", "0.61", "0.83"]
    new = next(r for r in every if r[0].startswith("Mobile-Former 200M"))
    ctl = [r for r in every if " px" in r[0]]
    s040, top = mn["0.40"], max(mn.values(), key=tr)
    assert _find(rf"under truth it is {N} points above every MobileNetV3 here, and only Small-0\.40 is about as "
                 rf"fast\.\*\* Mobile-Former 200M / 13 \(`mobile_former_cpu`, 128 px\) re-times at {N} ms \(passes "
                 rf"(\S+)\) and reaches ({N} ± {N})% over 3 seeds and ([^%]+)% under truth\. Small-0\.40 takes {N} ms "
                 rf"for ([^%]+)% and ([^%]+)% \(pass by pass the Mobile-Former is the faster in (\d) of 5\); the best "
                 rf"MobileNetV3 under truth, Small-(\S+), reaches ([^%]+)% at {N} ms", results, where) == (
        f"{tr(new) - tr(top):.2f}", med(new), new[5].split()[1].strip("()"), new[6], *new[6].split(" ± "),
        new[7].split(" (")[0], med(s040), s040[6], s040[7].split(" (")[0], faster(new, s040), top[0][-4:],
        top[7].split(" (")[0], med(top))
    assert all(float(med(new)) < float(med(r)) for r in mn.values() if r is not s040)
    assert _find(rf"At 128 px MobileNetV3-Small 1\.30 re-times at {N} ms for ([^%]+)% and ([^%]+)%, and Small-1\.96 "
                 rf"at {N} ms for ([^%]+)% and ([^%]+)%; the Mobile-Former is the faster in (\d) and (\d) of 5 passes "
                 rf"against them\. On CIFAR-10 the lower resolution costs Small-1\.30 little under the proxy \({N}% at "
                 rf"128 px, {N}% at 224 px\) and {N} points under truth", results, where) == (
        med(ctl[0]), ctl[0][6], ctl[0][7].split(" (")[0], med(ctl[1]), ctl[1][6], ctl[1][7].split(" (")[0],
        faster(new, ctl[0]), faster(new, ctl[1]), ctl[0][6].split()[0], mn["1.30"][6].split()[0],
        f"{tr(mn['1.30']) - tr(ctl[0]):.2f}")
    assert all(tr(new) > tr(c) for c in ctl) and ctl[0][0].endswith("1.30 at 128 px")
    assert _find(rf"Among the first four searches' points, under {N} ms only MobileNetV3 ran\.\*\* Re-timed, "
                 rf"MobileNetV3-Small 0\.40, 0\.61 and 0\.83 take "
                 rf"{N}-{N} ms and reach {N}-{N}% under truth; the fastest Mobile-Former of those points takes {N} ms "
                 rf"\(pass by pass, Small-0\.83 is faster than it in (\d) of 5 passes\)", results, where) == (
        med(fast), med(slow[0]), med(slow[-1]), f"{min(map(tr, slow)):.2f}", f"{max(map(tr, slow)):.2f}", med(fast),
        faster(slow[-1], fast))
    top_mn, top_px = max(map(tr, mn.values())), max(map(px, mn.values()))
    above = [tr(r) - top_mn for r in mf if tr(r) > top_mn]
    assert _find(rf"\*\* (Mobile-Former \S+ / \d+) \(`mobile_former_cpu`\) at {N} ms reaches ({N} ± {N})% over 3 "
                 rf"seeds and ([^%]+)% under truth; MobileNetV3-Small 1\.11 needs {N} ms for ({N} ± {N})% and "
                 rf"([^%]+)%, and Small-1\.30 at {N} ms reaches ({N} ± {N})% and ([^%]+)%\. Under truth (\d+) of "
                 rf"the (\d+) Mobile-Formers are above every MobileNetV3 here, by {N} to {N} points; under the "
                 r"proxy's 3-seed means, (\d+) are", results, where) == (
        best[0], med(best), best[6], *best[6].split(" ± "), best[7].split(" (")[0], med(s111), s111[6],
        *s111[6].split(" ± "), s111[7].split(" (")[0], med(s130), s130[6], *s130[6].split(" ± "),
        s130[7].split(" (")[0], str(len(above)), str(len(mf)), f"{min(above):.2f}", f"{max(above):.2f}",
        str(sum(px(r) > top_px for r in mf)))
    assert best[1] == "`mobile_former_cpu`" and px(best) > top_px
    lo, hi = span(best), span(s111)   # "inside either's range": each median inside the other's passes
    assert lo[0] <= float(med(s111)) <= lo[1] and hi[0] <= float(med(best)) <= hi[1]
    assert _find(rf"and Small-1\.11 are {N} ms apart in median, inside either's range of passes \((\S+) and (\S+) "
                 rf"ms\); pass by pass \(the passes move together\) the Mobile-Former is the faster in (\d) of 5\. In "
                 rf"top-1 it "
                 rf"is {N} points ahead under truth and {N} under the proxy, with {N}M MAdds against {N}M", results,
                 where) == (
        f"{float(med(s111)) - float(med(best)):.2f}", best[5].split()[1].strip("()"), s111[5].split()[1].strip("()"),
        faster(best, s111), f"{tr(best) - tr(s111):.2f}", f"{px(best) - px(s111):.2f}", best[2], s111[2])
    cfg = json.loads((LF_CIFAR_SEARCH / "seeds" / "models" / f"{file[best[0]]}.json").read_text())
    kept = re.match(r"dyReLU (\d+)/(\d+), bridges (\d+)/\d+ on (\S+) tokens, head x(\d+)", best[8]).groups()
    assert _find(rf"What it kept:\*\* dynamic ReLU in {N} of its {N} blocks, the bridges in {N}, on (.+?) tokens, "
                 rf"and a x{N} head "
                 rf"\({N}M parameters\), on a shallow stack: {N} blocks after the lite one, width x{N}, at {N} px",
                 results, where) == (*kept[:3], kept[3].replace("/", " and "), kept[4], best[3],
                                     str(sum(b[0] != "lite" for b in cfg["blocks"])), str(cfg["width_mult"]),
                                     str(cfg["resolution"]))
    (today,) = [r for r in mf if r[1] == "today's"]
    own = [r for r in _table(LF_CIFAR_SEARCH / "mobile_former" / "report.md", "| front | model | MAdds (M) | latency")
           if r[0] == "Mobile-Former"]
    own_fast = min(own, key=lambda r: float(r[3]))
    assert _find(rf"its fastest point on the first four\s?searches' merged front, ({today[0]}) \(dynamic ReLU and "
                 rf"bridges in every block\),\s?"
                 rf"re-times at {N} ms \(passes (\S+)\), just under Small-1\.30's {N} ms and {N} points above it\s?"
                 rf"under truth, but slower than every other MobileNetV3 here; on the first host it was the slower\s?"
                 rf"of the two\. Its own front has one faster point, (\S+ / \d+) at {N} ms in the search \({N}%\),\s?"
                 r"not trained again", results, where) == (
        today[0], med(today), today[5].split()[1].strip("()"), med(s130), f"{tr(today) - tr(s130):.2f}",
        own_fast[1].replace("-mobile_former", ""), own_fast[3], own_fast[5])
    assert float(med(today)) < float(med(s130)) and today[8].startswith("dyReLU 7/7, bridges 7/7")
    assert all(float(med(r)) < float(med(today)) for r in mn.values() if r is not s130)
    assert sum(float(r[3]) < float(today[4]) for r in own) == 1
    spread = max(every, key=lambda r: float(r[7].split(" ± ")[1].split()[0]))
    assert _find(rf"truth has 2 seeds per point, whose std reaches {N} points \(([^)]+)\), so the smaller margins "
                 r"above are ties", results, where) == (spread[7].split(" ± ")[1].split()[0], spread[0])
    assert all(r[7].endswith("(2)") for r in every)
    slowest = f"{max(float(med(r)) for r in rows):.2f}"
    assert _find(rf"it turned the first four searches' interleaved\s?fronts into a Mobile-Former lead from {N} "
                 rf"to {N} ms", results, where) == (med(fast), slowest)
    assert _find(rf"From there to {N} ms \(the slowest of them re-timed\)", results, where) == (slowest,)
    assert _find(rf"the milliseconds are one host's, whose passes differ by up to {N}x", results, where) == (
        f"{_pass_spread(passes):.2f}",)
    assert _find(rf"found a model that holds up when trained again \((\d) seeds under the proxy; 8 epochs on all of "
                 rf"CIFAR-10, (\d) seeds\) and timed again in one sitting beside MobileNetV3: a {N}M-MAdds, (\d+)-px "
                 rf"Mobile-Former with no dynamic ReLU and one bridge on one token runs in {N} ms and reaches {N}% "
                 rf"under long training, where MobileNetV3-Small 0\.40 takes {N} ms for {N}% and the best "
                 rf"MobileNetV3 under long training, Small-(\S+), reaches {N}% at {N} ms; MobileNetV3-Small at "
                 rf"the same 128 px is slower "
                 rf"and lower \({N}% at {N} ms\)", readme, "README") == (
        "3", new[7].split("(")[1].rstrip(")"), new[2], "128", med(new),
        new[7].split(" ± ")[0], med(s040), s040[7].split(" ± ")[0], top[0][-4:], top[7].split(" ± ")[0], med(top),
        ctl[0][7].split(" ± ")[0], med(ctl[0]))
    assert new[8].startswith("dyReLU 0/") and "bridges 1/" in new[8] and "on 1 tokens" in new[8]
    rank = [line for line in (LF_CIFAR_SEARCH / "seeds" / "report.md").read_text().splitlines()
            if line.startswith("- Kendall tau")][0]
    assert _find(r"The proxy ranks these (\d+) points like truth at Kendall tau (\S+ \[\S+ \S+\])", results, where) \
        == (str(len(every)), rank.split("tau ")[1])
