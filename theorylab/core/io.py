"""Atomic file output and environment reports for reproducible result files."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "environment_info",
    "package_versions",
    "to_jsonable",
    "write_bytes_atomic",
    "write_json_atomic",
]

_PACKAGES = (
    "theorylab",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "numpyro",
    "numpy",
    "scipy",
    "networkx",
    "scikit-learn",
    "matplotlib",
)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    Readers never see a half-written file; parents are created as needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/JAX scalars and arrays, tuples, paths and NamedTuples to JSON types.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` so the file stays
    strict JSON.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "_asdict"):
        return to_jsonable(obj._asdict())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return to_jsonable(np.asarray(obj).tolist())
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` (made JSON-safe by :func:`to_jsonable`) with indentation."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return write_bytes_atomic(path, (text + "\n").encode())


def package_versions(names=_PACKAGES) -> dict[str, str | None]:
    """Installed versions of the given distributions (``None`` when not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment_info() -> dict[str, Any]:
    """Machine, Python, package versions, JAX devices and x64 status (for result files)."""
    import jax

    devices = jax.devices()
    return {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "versions": package_versions(),
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind if devices else None,
        "x64_enabled": bool(jax.config.read("jax_enable_x64")),
    }
