"""Where and how the twin computes: CPU threads (torch's OpenMP pool and OpenBLAS's own), the
device, bfloat16 autocast on CUDA, and torch.compile where the installed torch has it.

    set_threads(2)                      # torch and OpenBLAS: 2 threads each
    with autocast(device):              # bfloat16 matmuls on CUDA, a no-op on the CPU
        logits, _ = model(tokens)
"""

import contextlib
import ctypes
import os

import torch

# Environment variables that change BLAS/OpenMP behaviour; benchmarks echo them when set.
ENV_KNOBS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT",
             "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def openblas():
    """The OpenBLAS torch calls through libblas.so.3 (already loaded by libtorch), or None."""
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib
    except (OSError, AttributeError):
        return None


def set_threads(n, blas_n=None):
    """torch.set_num_threads sizes only torch's OpenMP pool; the pthread OpenBLAS keeps its own,
    one thread per core unless told otherwise, so size it too (both on 2 cores stall badly)."""
    torch.set_num_threads(n)
    lib = openblas()
    if lib is not None:
        lib.openblas_set_num_threads(n if blas_n is None else blas_n)


def flush_denormals():
    """Sets the CPU's flush-to-zero for this process: gate products (Π η over a chunk) and decayed
    memories reach float32 denormals, which x86 computes up to ~100× slower (DECISIONS.md). Values
    below 1.2e−38 become 0, which changes no result that matters; titans-ts's WebAssembly cannot
    flush and keeps values out of that range instead. Returns whether the CPU supports it."""
    return torch.set_flush_denormal(True)


def blas_description():
    lib = openblas()
    return lib.openblas_get_config().decode() if lib else "unknown"


def pick_device(name=None, local_rank=0):
    """'cuda' (this process's GPU under torchrun) when available, else 'cpu'; or the one named."""
    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: torch sees no CUDA device")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(name)


def autocast(device, enabled=True):
    """bfloat16 autocast on CUDA (the memory core stays float32: see memory_layer); nothing on
    the CPU, where the twin trains in float32 (or float64 for checks)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def maybe_compile(model, wanted):
    """torch.compile(model) when asked and the installed torch has it (≥ 2.0); else the model,
    with the reason returned for the log."""
    if not wanted:
        return model, None
    if not hasattr(torch, "compile"):
        return model, f"torch {torch.__version__} has no torch.compile; running eagerly"
    return torch.compile(model), None


def fsdp_unavailable():
    """None when torch.distributed.fsdp imports, else the reason (Debian's torch 1.13 on Python
    3.11 fails with "mutable default … for field tensor_properties is not allowed")."""
    import importlib

    try:
        importlib.import_module("torch.distributed.fsdp")
        importlib.import_module("torch.distributed.checkpoint.state_dict")  # torch ≥ 2.2
    except Exception as e:  # ImportError, or the dataclass ValueError of torch 1.13 on Python 3.11
        return f"torch {torch.__version__}: {type(e).__name__}: {e}"
    return None


def env_knobs():
    return {k: os.environ[k] for k in ENV_KNOBS if k in os.environ}
