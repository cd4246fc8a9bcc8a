"""The warp grid cache is bounded by bytes and evicts the least recently used size."""

from __future__ import annotations

import torch

from rife_core.model.warp import GridCache, warp

CPU = torch.device("cpu")


def grid_bytes(h: int, w: int) -> int:
    return (h * w * 2 + 2) * 4  # float32 grid (1, H, W, 2) + divisor (2,)


def test_cache_stays_within_its_byte_budget_and_evicts_least_recently_used():
    cache = GridCache(max_bytes=grid_bytes(32, 32) * 2)
    a = cache.get(32, 32, CPU)
    cache.get(32, 31, CPU)
    assert len(cache) == 2 and cache.bytes == grid_bytes(32, 32) + grid_bytes(32, 31)
    assert cache.get(32, 32, CPU)[0] is a[0]  # a hit, now the most recently used
    cache.get(31, 32, CPU)  # no room for three: evicts (32, 31), the least recently used
    assert list(cache._entries) == [("cpu", 32, 32), ("cpu", 31, 32)]
    assert cache.bytes == grid_bytes(32, 32) + grid_bytes(31, 32) <= cache.max_bytes
    assert cache.get(32, 32, CPU)[0] is a[0]


def test_a_grid_larger_than_the_budget_is_built_but_not_kept():
    cache = GridCache(max_bytes=1000)
    grid, div = cache.get(64, 64, CPU)
    assert grid.shape == (1, 64, 64, 2) and len(cache) == 0 and cache.bytes == 0


def test_grids_are_the_published_linspace_layout():
    grid, div = GridCache(1 << 20).get(3, 5, CPU)
    assert torch.equal(grid[0, 0, :, 0], torch.linspace(-1, 1, 5)) and torch.equal(grid[0, :, 0, 1], torch.linspace(-1, 1, 3))
    assert div.tolist() == [2.0, 1.0]


def test_zero_flow_warp_is_the_identity():
    image = torch.rand(1, 3, 8, 12)
    assert torch.allclose(warp(image, torch.zeros(1, 2, 8, 12)), image, atol=1e-6)
