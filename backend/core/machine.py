"""What identifies this machine's float kernels: the CPU model and its vector instruction sets.

Two hosts with the same model string can still differ in what their kernels use (a cloud "AMD EPYC" VM with or
without AVX-512), and so in speed and in bits. :func:`machine_id` joins both; the backend choice cache
(``training/auto_backend.py``) and the JAX compilation cache (``training/threads.py``) are keyed on it, and the
benchmarks record both parts (``benchmarks/floor.py``).
"""

from __future__ import annotations

import platform

CPUINFO = "/proc/cpuinfo"
# The instruction sets that change float kernels (BLAS, XLA): what machine_id tells apart.
VECTOR_ISA = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile", "sve", "asimd")


def _cpuinfo_field(name: str) -> str | None:
    """The first ``name : value`` line of /proc/cpuinfo (Linux), else None."""
    try:
        with open(CPUINFO, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(name) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU model string (Linux /proc/cpuinfo; else platform.processor())."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def vector_isa() -> list[str]:
    """The CPU's vector instruction sets among :data:`VECTOR_ISA` (x86 ``flags``, Arm ``Features``), sorted."""
    flags = (_cpuinfo_field("flags") or _cpuinfo_field("Features") or "").split()
    return sorted(f for f in flags if f in VECTOR_ISA)


def machine_id() -> str:
    """``<cpu model>|<vector ISA, comma-separated>``: the key part of every per-machine cache."""
    return f"{cpu_model()}|{','.join(vector_isa())}"
