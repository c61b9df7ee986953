"""runtime.py: peak memory that two runs in one process do not share."""

from __future__ import annotations

import sys

import pytest
import torch

from lightft.runtime import peak_memory_mb, reset_peak_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU peak reset is Linux's /proc/self/clear_refs")
def test_cpu_peak_memory_resets_between_runs():
    cpu = torch.device("cpu")
    big = torch.ones(300 * 2**20 // 4)  # 300 MiB, touched
    after_big = peak_memory_mb(cpu)
    del big
    reset_peak_memory(cpu)
    assert peak_memory_mb(cpu) < after_big - 200
