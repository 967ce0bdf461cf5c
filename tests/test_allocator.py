"""The fixed mmap threshold gives a freed large buffer back, where glibc's default keeps it."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from streamal.allocator import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

base = rss()
for _ in range(3):  # glibc raises its threshold on the first free, then keeps the heap's top
    buffer = b"x" * (24 << 20)
    del buffer
print(rss() - base)
"""


def _kept_mib(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_freed_large_buffer_goes_back_with_the_threshold_fixed_only():
    assert _kept_mib("default") > 16  # what a long run's memory kept growing by
    assert _kept_mib("fixed") < 4
