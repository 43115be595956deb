"""bench/gpu.sh in its reduced CPU mode: the GPU benchmark runs and prints every figure, so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO_ROOT
from test_inference import BF16_PROBABILITY_TOLERANCE


def test_gpu_benchmark_runs_in_reduced_mode():
    environment = os.environ | {"PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(REPO_ROOT / "bench" / "gpu.sh"), "--reduced"], capture_output=True, text=True,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.startswith("device: ")
    for task in ("evaluation", "training"):
        for side in ("plasmidlm", "plain"):
            assert re.search(rf"{task} +{side} +[\d,]+ windows/s +[\d,]+ tokens/s", out), out
        assert re.search(rf"{task} ratio plasmidlm / plain \d+\.\d\dx", out), out
    # Both sides score the same windows with the same weights: in fp32 (a CPU without AMX), the same probabilities;
    # in bf16 (plasmidlm's automatic precision on a CPU with AMX), within bf16's tolerance.
    difference = float(re.search(r"largest probability difference (\S+)", out).group(1))
    precision = re.search(r"evaluation +plasmidlm .*\(batch \d+, (\w+)\)", out).group(1)
    assert difference < {"fp32": 1e-5, "bf16": BF16_PROBABILITY_TOLERANCE}[precision]
    assert re.search(r"host side: token ids [\d,]+ windows/s with numpy k-mer ids, [\d,]+ with the tokenizer; "
                     r"collating a training batch \d+\.\d\d ms", out), out
    assert re.search(r"checkpoint of [\d,]+ MB: training stops \d+\.\d\d s in the foreground \(written in "
                     r"\d+\.\d\d s\), \d+\.\d\d s in the background \(written in \d+\.\d\d s\)", out), out
    assert "summary (plasmidlm / plain): tiny 100 nt" in out
