"""The floating-point precision a CUDA GPU runs fast, from its compute capability: one decision for training and
inference; and the precision of inference on a CPU.

`torch.cuda.is_bf16_supported()` also answers True where bf16 is only emulated (compute capability 7.x: V100, T4),
where it runs slower than fp16 or even fp32. bf16 has tensor cores from Ampere (8.0) on, fp16 from Volta (7.0).
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

BF16_CAPABILITY = (8, 0)
FP16_CAPABILITY = (7, 0)


def gpu_precision(device: int | torch.device | None = None) -> str:
    """"bf16" on a GPU of compute capability 8.0 or later, "fp16" on 7.x, "fp32" below; logged with the GPU's
    name."""
    capability = tuple(torch.cuda.get_device_capability(device))
    if capability >= BF16_CAPABILITY:
        precision = "bf16"
    elif capability >= FP16_CAPABILITY:
        precision = "fp16"
    else:
        precision = "fp32"
    logger.info(f"{torch.cuda.get_device_name(device)} (compute capability {capability[0]}.{capability[1]}): "
                f"{precision}")
    return precision


def cpu_precision() -> str:
    """"bf16" on a CPU with AMX tiles and AVX-512 bf16 instructions (Intel Xeon from Sapphire Rapids on), where
    bf16 matrix products run about twice as fast as fp32; "fp32" elsewhere, where bf16 is emulated and slower."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, as torch exposes no public query
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return "bf16" if amx is not None and bf16 is not None and amx() and bf16() else "fp32"
