"""The declarative spaces: presets round-trip, budgets, adapters, files."""
import random
import subprocess
import sys
from pathlib import Path

import pytest

import mfsearch
from spaces import (
    SPACES,
    Choice,
    FloatGrid,
    IntRange,
    MobileFormerCpuSpace,
    MobileFormerSpace,
    MobileNetV3Space,
    SpaceError,
    fit_to_budget,
    load_space,
    space_from_dict,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def space():
    return MobileFormerSpace()


def test_space_modules_import_neither_optuna_nor_ray():
    code = ("import sys, spaces, spaces.mobile_former, spaces.mobilenet_v3; "
            "bad = [m for m in ('optuna', 'ray') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", mfsearch.list_models("mobile_former"))
def test_presets_encode_and_decode_to_themselves(space, name):
    cfg = mfsearch.preset_config(name)
    params = space.encode(cfg)
    assert space.decode(params) == cfg
    for dim, value in params.items():
        assert space.dimensions[dim].contains(value)


def test_every_dimension_reachable(space):
    rng = random.Random(0)
    seen = {name: set() for name in space.dimensions}
    for _ in range(3000):
        for name, value in space.sample_params(rng).items():
            seen[name].add(value)
    for name, dim in space.dimensions.items():
        assert seen[name] == set(dim.grid()), name
    # and each value changes the decoded model where it is not inert
    base = space.encode(mfsearch.preset_config("mobile_former_151m"))
    for name in ("tokens", "token_dim", "width_mult", "head_hidden", "resolution", "depth3", "e1_3",
                 "e2_2", "down_e1", "channels", "lite_stride", "group_num"):
        values = space.dimensions[name].grid()
        configs = {space.decode({**base, name: v}).to_json() for v in values}
        assert len(configs) == len(values), name


def test_ranges_contain_the_published_presets_and_more(space):
    assert space.dimensions["tokens"].grid() == tuple(range(1, 9))
    assert space.dimensions["token_dim"].grid()[0] == 64 and space.dimensions["token_dim"].grid()[-1] == 256
    lo, hi = space.flops_range()
    assert lo < 26e6 and hi > 508e6


def test_no_sample_over_budget_in_10000_draws(space):
    rng = random.Random(1)
    budget = 150e6
    for _ in range(10_000):
        assert space.flops(space.sample(rng, max_flops=budget)) <= budget


def test_budget_below_space_minimum_is_refused(space):
    lo, _ = space.flops_range()
    with pytest.raises(SpaceError, match="smallest"):
        space.sample(random.Random(0), max_flops=lo * 0.5, max_tries=200)


def test_flops_range_bounds_samples(space):
    lo, hi = space.flops_range()
    rng = random.Random(2)
    for _ in range(500):
        f = space.flops(space.sample(rng))
        assert lo <= f <= hi


@pytest.mark.parametrize("budget", [25e6, 50e6, 100e6, 150e6, 300e6, 500e6])
def test_fit_to_budget_lands_in_band(space, budget):
    """Width alone cannot shrink tokens or the head, nor cross every channel-rounding
    jump: such configs are refused with a reason; all others land in [0.9 B, B]."""
    rng = random.Random(int(budget))
    landed = jumps = 0
    for _ in range(40):
        cfg = space.sample(rng)
        try:
            fitted = fit_to_budget(cfg, budget)
        except SpaceError as exc:
            assert "even at width" in str(exc) or "rounding jumps" in str(exc)
            jumps += "rounding jumps" in str(exc)
            continue
        f = mfsearch.estimate_flops(fitted)
        assert 0.9 * budget <= f <= budget
        assert fitted.replace(width_mult=cfg.width_mult) == cfg  # only the width moved
        landed += 1
    assert landed >= 5 and jumps <= 0.25 * (landed + jumps), (landed, jumps)


def test_fit_to_budget_on_presets():
    for name in ("mobile_former_96m", "mobile_former_151m", "mobile_former_294m"):
        for budget in (100e6, 150e6, 300e6, 500e6):
            f = mfsearch.estimate_flops(fit_to_budget(mfsearch.preset_config(name), budget))
            assert 0.9 * budget <= f <= budget


def test_yaml_narrowing(tmp_path):
    path = tmp_path / "narrow.yaml"
    path.write_text("dimensions:\n  tokens: [2, 4]\n  width_mult: {low: 0.5, high: 0.8, step: 0.1}\n"
                    "  resolution: 160\n  channels: [c151]\n")
    space = MobileFormerSpace.from_file(path)
    assert space.dimensions["tokens"] == Choice((2, 4))
    assert space.dimensions["width_mult"] == FloatGrid(0.5, 0.8, 0.1)
    rng = random.Random(0)
    for _ in range(200):
        cfg = space.sample(rng)
        assert cfg.tokens in (2, 4) and 0.5 <= cfg.width_mult <= 0.8 and cfg.resolution == 160
    again = MobileFormerSpace.from_dict(space.to_dict())
    assert again.dimensions == space.dimensions


def test_json_widening(tmp_path):
    path = tmp_path / "wide.json"
    path.write_text('{"dimensions": {"tokens": {"low": 1, "high": 12}}}')
    assert MobileFormerSpace.from_file(path).dimensions["tokens"] == IntRange(1, 12)


@pytest.mark.parametrize("text,msg", [
    ("dimensions: {tokens: [1, 2}", "not valid YAML"),
    ("dimensions: {colour: [1]}", "unknown dimension"),
    ("dimensions: {tokens: {low: 5, high: 1}}", "low <= high"),
    ("dimensions: {tokens: []}", "empty"),
    ("dimensions: {channels: [c999]}", "cannot build"),
    ("- just\n- a list", "mapping"),
])
def test_broken_space_files(tmp_path, text, msg):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError, match=msg):
        MobileFormerSpace.from_file(path)
    assert "\n" not in str(pytest.raises(SpaceError, MobileFormerSpace.from_file, path).value)


def test_missing_space_file(tmp_path):
    with pytest.raises(SpaceError, match="not found"):
        MobileFormerSpace.from_file(tmp_path / "nope.yaml")


def test_optuna_adapter_proposes_decodable_params(space):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        cfg = space.decode(space.suggest(trial))
        study.tell(trial, space.flops(cfg))
    assert len(study.trials) == 20


def test_ray_adapter_samples_decodable_params(space):
    from ray.tune.search.sample import Domain
    ps = space.ray_param_space()
    assert set(ps) == set(space.dimensions)
    params = {k: v.sample() if isinstance(v, Domain) else v for k, v in ps.items()}
    assert space.decode(space.normalize(params)).validate() is None


def test_ray_samples_lie_on_the_grid_when_low_is_not_a_multiple_of_step(tmp_path):
    from ray.tune.search.sample import Domain
    path = tmp_path / "offset.yaml"
    path.write_text("dimensions:\n  tokens: {low: 1, high: 7, step: 3}\n  token_dim: {low: 68, high: 196, step: 32}\n"
                    "  width_mult: {low: 0.55, high: 0.95, step: 0.2}\n"
                    "  head_hidden: {low: 700, high: 1300, step: 300}\n"
                    "  resolution: {low: 130, high: 190, step: 30}\n")
    space = MobileFormerSpace.from_file(path)
    ps = space.ray_param_space()
    grids = {"tokens": (1, 4, 7), "token_dim": (68, 100, 132, 164, 196), "width_mult": (0.55, 0.75, 0.95),
             "head_hidden": (700, 1000, 1300), "resolution": (130, 160, 190)}
    seen = {name: set() for name in grids}
    for _ in range(300):
        raw = {k: v.sample() if isinstance(v, Domain) else v for k, v in ps.items()}
        params = space.normalize(raw)
        space.check_contains(params)
        for name in grids:
            d = space.dimensions[name]
            k = round((params[name] - d.low) / d.step)
            assert d.low <= params[name] <= d.high and abs(params[name] - (d.low + k * d.step)) < 1e-6, (name, raw)
            assert abs(raw[name] - params[name]) < 1e-6  # on the grid as Ray drew it, not only after rounding
            seen[name].add(params[name])
    assert {name: tuple(sorted(v)) for name, v in seen.items()} == grids  # ends included, nothing else
    assert space.decode(params).validate() is None


def test_ray_int_range_with_step_one_reaches_high():
    from ray.tune.search.sample import Domain
    space = MobileFormerSpace.from_file(REPO / "tests" / "data" / "tiny_space.yaml")
    domain = space.ray_param_space()["tokens"]
    assert isinstance(domain, Domain) and {domain.sample() for _ in range(200)} == {1, 2, 3}


def test_mobilenet_v3_space():
    space = MobileNetV3Space()
    members = space.members(max_flops=150e6)
    assert members and all(space.flops(c) <= 150e6 for c in members)
    assert len(space.members()) == 2 * 4 * 6
    for cfg in members:
        assert space.decode(space.encode(cfg)) == cfg


# ---- mobile_former_cpu: the per-stage trade of the global part ------------------------------

@pytest.fixture(scope="module")
def cpu_space():
    return MobileFormerCpuSpace()


def test_cpu_space_is_the_default_space_plus_the_new_dimensions(space, cpu_space):
    new = set(cpu_space.dimensions) - set(space.dimensions)
    assert {k: v for k, v in cpu_space.dimensions.items() if k in space.dimensions} == space.dimensions
    assert new == {"head_expansion"} | {f"{d}_{k}" for d in ("dynamic_relu", "bridges", "tokens") for k in range(6)}
    assert SPACES["mobile_former_cpu"] is MobileFormerCpuSpace
    assert load_space("mobile_former_cpu").dimensions == cpu_space.dimensions


def test_cpu_space_samples_encode_and_decode_to_themselves(cpu_space):
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        cfg = cpu_space.sample(rng)
        params = cpu_space.encode(cfg)
        assert cpu_space.decode(params) == cfg
        assert all(cpu_space.dimensions[n].contains(v) for n, v in params.items())
        seen |= {k for b in cfg.blocks for k in b.options()} | {("head", cfg.head_expansion)}
    assert seen >= {"dynamic_relu", "bridges", "tokens"} | {("head", h) for h in range(2, 7)}
    for name in mfsearch.list_models("mobile_former"):   # the published block is in the space
        cfg = mfsearch.preset_config(name)
        assert cpu_space.decode(cpu_space.encode(cfg)) == cfg


def test_cpu_space_dimensions_change_the_model_where_not_inert(cpu_space):
    base = cpu_space.encode(mfsearch.preset_config("mobile_former_151m"))   # depth0 1: stage 0 is inert
    for name in ("head_expansion", "dynamic_relu_3", "bridges_3", "tokens_3", "tokens_5", "bridges_4"):
        values = cpu_space.dimensions[name].grid()
        configs = {cpu_space.decode({**base, "tokens": 8, name: v}).to_json() for v in values}
        assert len(configs) == len(values), name
    assert len({cpu_space.decode({**base, "bridges_0": v}).to_json() for v in (False, True)}) == 1
    # a stage asking for more tokens than the model has (151M: 6) runs on all of them
    assert cpu_space.decode({**base, "tokens_3": 8}) == cpu_space.decode({**base, "tokens_3": 6})
    cfg = cpu_space.decode({**base, "bridges_2": False, "tokens_2": 2, "dynamic_relu_3": False, "tokens_3": 2})
    stage2 = [b for b in cfg.blocks if b.out == 32]
    assert stage2 and all(b.options() == {"bridges": False} for b in stage2)   # tokens_2 inert without bridges
    assert cpu_space.encode(cfg)["tokens_2"] == cfg.tokens


def test_default_space_refuses_configs_using_the_new_dimensions(space, cpu_space):
    base = cpu_space.encode(mfsearch.preset_config("mobile_former_151m"))
    for change in ({"bridges_3": False}, {"tokens_2": 1}, {"dynamic_relu_5": False}, {"head_expansion": 4}):
        with pytest.raises(SpaceError, match="outside this space"):
            space.encode(cpu_space.decode({**base, **change}))


def test_cpu_space_flops_range_bounds_samples(cpu_space, space):
    lo, hi = cpu_space.flops_range()
    assert lo < space.flops_range()[0] and hi == space.flops_range()[1]   # the published block is the dearest
    rng = random.Random(3)
    for _ in range(300):
        assert lo <= cpu_space.flops(cpu_space.sample(rng)) <= hi


def test_space_files_pick_their_space_by_key(tmp_path):
    path = tmp_path / "cpu.yaml"
    path.write_text("space: mobile_former_cpu\ndimensions:\n  bridges_1: [false]\n  bridges_2: [false]\n"
                    "  head_expansion: {low: 3, high: 4}\n  tokens_3: [1]\n  e1_4: [3]\n")
    space = load_space(path)
    assert isinstance(space, MobileFormerCpuSpace) and space.dimensions["bridges_1"] == Choice((False,))
    assert space_from_dict(space.to_dict()).dimensions == space.dimensions   # what a run's settings store
    assert isinstance(load_space(REPO / "tests" / "data" / "tiny_space.yaml"), MobileFormerSpace)
    rng = random.Random(0)
    for _ in range(50):
        cfg = space.sample(rng)
        assert 3 <= cfg.head_expansion <= 4
        first_down = next(b for b in cfg.blocks if b.kind == "down")   # stage 1, or 2 after a stride-2 lite row
        assert first_down.bridges is False
        params = space.encode(cfg)   # inert values outside the narrowed dimensions settle inside them
        assert space.decode(params) == cfg and params["tokens_3"] == 1 and params["e1_4"] == 3
    with pytest.raises(SpaceError, match="not 'mobile_former'"):
        MobileFormerSpace.from_file(path)
    (tmp_path / "odd.yaml").write_text("space: mobile_former_gpu\n")
    with pytest.raises(SpaceError, match="unknown space"):
        load_space(tmp_path / "odd.yaml")


def test_cpu_space_optuna_adapter(cpu_space):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        params = cpu_space.suggest(trial)
        cfg = cpu_space.decode(params)
        assert cpu_space.decode(cpu_space.encode(cfg)) == cfg
        study.tell(trial, cpu_space.flops(cfg))
