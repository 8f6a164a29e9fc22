"""Measurements of the data layer (``mfsearch data``): loader speed, synthetic baselines, load time.

The numbers they produced, with their protocols, are in docs/data.md.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..evaluation import accuracy
from .loader import BatchLoader
from .synthetic import make_synthetic


def loader_throughput(resolution: int, stored_size: int = 32, batch_size: int = 128, n_images: int = 20_000,
                      train: bool = True, channels_last: bool = False, device: str = "cpu") -> float:
    """Images/s of one BatchLoader epoch over random uint8 images (after one warm-up epoch)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_images, 3, stored_size, stored_size), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (n_images,), generator=gen)
    loader = BatchLoader(x, y, batch_size, resolution=resolution, train=train, channels_last=channels_last,
                         mean=(0.5,) * 3, std=(0.25,) * 3, device=device)
    for _ in loader:
        pass
    start = time.perf_counter()
    seen = sum(len(yb) for _, yb in loader)
    if loader.device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def _fit_model(model: torch.nn.Module, train: BatchLoader, test: BatchLoader, epochs: int, lr: float,
               weight_decay: float, label: str) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    start = time.perf_counter()
    acc = 0.0
    for epoch in range(epochs):
        model.train()
        for xb, yb in train:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        acc = accuracy(model, test)
        print(f"{label} epoch {epoch + 1}: test accuracy {acc:.1f}% "
              f"(train {accuracy(model, train):.1f}%, {time.perf_counter() - start:.0f} s)", flush=True)
    return acc


def synthetic_baselines(seed: int = 0, linear_epochs: int = 15, cnn_epochs: int = 5) -> dict[str, float]:
    """Test accuracy (%) of a linear classifier and a small CNN on the default synthetic dataset.

    Documents that the task is not linearly separable while a CNN learns it.
    Both models see normalised raw pixels without augmentation (batch 256 and 128).
    """
    torch.manual_seed(seed)
    start = time.perf_counter()
    data = make_synthetic(seed=seed)
    print(f"synthetic 20k + 4k generated in {time.perf_counter() - start:.2f} s", flush=True)
    mean, std = data.mean_std()

    def loaders(batch_size: int) -> tuple[BatchLoader, BatchLoader]:
        kw = dict(mean=mean, std=std, seed=seed)
        return (BatchLoader(data.train_x, data.train_y, batch_size, train=True, pad=0, flip=False, **kw),
                BatchLoader(data.test_x, data.test_y, 1000, **kw))

    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, data.num_classes))
    lin_acc = _fit_model(linear, *loaders(256), linear_epochs, 1e-3, 1e-4, "linear")

    def block(cin: int, cout: int) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                   torch.nn.BatchNorm2d(cout), torch.nn.ReLU(), torch.nn.MaxPool2d(2))

    cnn = torch.nn.Sequential(block(3, 32), block(32, 64), block(64, 128), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(128, data.num_classes))
    cnn_acc = _fit_model(cnn, *loaders(128), cnn_epochs, 2e-3, 0.0, "cnn")
    return {"linear": lin_acc, "cnn": cnn_acc}
