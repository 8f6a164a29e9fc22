import os
import random
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch

# the suite runs in two pytest-xdist workers on two cores (.ci/run): one thread each, so the
# workers do not oversubscribe the cores; two when run alone
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from mfsearch.models import BlockSpec, MobileFormerConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CIFAR10 = Path(os.environ.get("MFSEARCH_CIFAR10", REPO.parent / "shared" / "data" / "cifar10"))


def random_mobile_former_config(rng: random.Random) -> MobileFormerConfig:
    """A random valid config drawn independently of spaces/ (tests the generator alone).

    Varies every shape field and switch: widths, depth, tokens, Former and bridge heads,
    FFN expansion, channel groups and the five ablation switches. Group and bridge-head
    counts are drawn among the values the drawn channels allow (MobileFormerConfig.validate).
    """
    heads = rng.choice([1, 2, 4])
    rows = [["lite", rng.choice([2, 3]), rng.choice([8, 12, 16]), 1, rng.choice([1, 2]), 0]]
    out = rows[0][2]
    for _ in range(rng.randint(2, 4)):
        out = int(out * rng.choice([1.5, 2]))
        out -= out % 4
        rows.append(["down", rng.randint(3, 6), out, 1, 2, rng.randint(2, 4)])
        for _ in range(rng.randint(0, 2)):
            rows.append(["block", rng.randint(2, 6), out, rng.randint(1, 2), 1, rng.randint(2, 4)])
    cfg = MobileFormerConfig(
        blocks=tuple(BlockSpec.from_row(r) for r in rows), stem=rng.choice([8, 12, 16]),
        width_mult=rng.choice([0.5, 0.75, 1.0, 1.25, 1.5]), tokens=rng.randint(1, 8),
        token_dim=heads * 4 * rng.randint(4, 16), former_heads=heads, bridge_heads=1,
        ffn_expansion=rng.choice([1, 2, 3, 4]), head_hidden=rng.choice([512, 1024, 1280]),
        head_expansion=rng.choice([4, 6]), group_num=1,
        resolution=rng.choice([96, 128, 160, 192, 224, 256, 288]),
        dynamic_relu=rng.random() > 0.2, former_ffn=rng.random() > 0.2,
        mobile_to_former=rng.random() > 0.2, former_to_mobile=rng.random() > 0.2,
        former=rng.random() > 0.1)
    expanded = cfg.expanded_rows()
    bridged = [c for kind, cin, cout, *_ in expanded if kind != "lite" for c in (cin, cout)]
    grouped = [c for _, cin, cout, _, e1, _ in expanded for c in (cin, cout, cin * e1)]
    bridge_heads = rng.choice([h for h in (1, 2, 3, 4, 8) if all(c % h == 0 for c in bridged)])
    group_num = rng.choice([1] + [g for g in (2, 3, 4, 8) if all(c % g == 0 for c in grouped)])
    return cfg.replace(bridge_heads=bridge_heads, group_num=group_num)


def with_row_options(cfg: MobileFormerConfig, rng: random.Random) -> MobileFormerConfig:
    """`cfg` with random row options on its non-lite rows (dynamic ReLU, bridges, a token count)
    and a random head expansion; a config without a Former takes the head expansion only."""
    rows = []
    for b in cfg.blocks:
        if b.kind != "lite" and cfg.former:
            bridges = rng.random() > 0.4
            b = replace(b, dynamic_relu=rng.random() > 0.5, bridges=bridges,
                        tokens=rng.randint(1, cfg.tokens) if bridges else None)
        rows.append(b)
    return cfg.replace(blocks=tuple(rows), head_expansion=rng.choice([2, 3, 4, 6]))


# mobile_former_26m with every row option (tests/test_*.py): a pure mobile stage-0 row, a stage
# on one and then two of the three tokens with plain ReLU in its down row, a row without bridges
# that keeps dynamic ReLU (read off the token passed through), and a narrower head
MIXED_ROWS = (["lite", 3, 12, 1, 2, 0], ["block", 3, 12, 1, 1, 0, {"bridges": False, "dynamic_relu": False}],
              ["down", 6, 24, 1, 2, 4, {"tokens": 1, "dynamic_relu": False}], ["block", 3, 24, 1, 1, 0, {"tokens": 2}],
              ["down", 6, 48, 1, 2, 4, {"bridges": False}], ["block", 4, 48, 1, 1, 0], ["block", 6, 64, 1, 1, 0],
              ["down", 6, 96, 1, 2, 4], ["block", 6, 96, 1, 1, 0])


def mixed_config(**overrides) -> MobileFormerConfig:
    import mfsearch
    return mfsearch.get_config("mobile_former_26m", blocks=MIXED_ROWS, head_expansion=4, **overrides)


TINY_SPACE = str(Path(__file__).parent / "data" / "tiny_space.yaml")


def banded_draws(settings, count: int, seed: int = 0):
    """For `count` random proposals of the tiny space: (the proposal, the config into_band
    makes of it, why it cannot be trained or None, the sampler's constraint values)."""
    from mfsearch.search.evaluate import constraints, into_band
    from spaces import MobileFormerSpace
    space = MobileFormerSpace.from_file(TINY_SPACE)
    rng = random.Random(seed)
    for _ in range(count):
        cfg = space.decode(space.sample_params(rng))
        yield (cfg, *into_band(settings, space, cfg), constraints(settings, space, cfg))


def on_ci() -> bool:
    """CI=true (set by .ci/run): a test whose prerequisite is missing fails instead of skipping."""
    return os.environ.get("CI", "").lower() == "true"


def require_cifar10() -> Path:
    """The CIFAR-10 image tree, or a skip (a failure under CI=true, where the data is expected)."""
    if not (CIFAR10 / "train").is_dir():
        why = f"CIFAR-10 ImageFolder tree not found at {CIFAR10} (set MFSEARCH_CIFAR10)"
        if on_ci():
            pytest.fail(f"{why}, and CI=true: the CIFAR-10 tests must run in CI")
        pytest.skip(why)
    return CIFAR10


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    return require_cifar10()


@pytest.fixture(scope="session", autouse=True)
def _isolated_caches(tmp_path_factory):
    """Every cache a test (or a subprocess it starts) writes goes to a temporary home, never to
    the user's ~/.cache/mfsearch: HOME (the datasets and baselines caches expand ~ when used),
    MFSEARCH_CACHE and XDG_CACHE_HOME (read by subprocesses), and the latency cache directory,
    which is fixed when mfsearch.latency is imported (before this fixture runs). Session-scoped,
    so module-scoped fixtures (e.g. test_train's cifar_small) are isolated too."""
    import mfsearch.latency as latency
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("XDG_CACHE_HOME", str(home / ".cache"))
        mp.setenv("MFSEARCH_CACHE", str(home / ".cache" / "mfsearch"))
        mp.setenv("MPLCONFIGDIR", str(home / ".config" / "matplotlib"))
        mp.setattr(latency, "CACHE_DIR", home / ".cache" / "mfsearch" / "latency")
        yield home


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate a server a test started; kill it when it does not stop within `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
