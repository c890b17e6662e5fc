"""Registry and runner for paper reproductions (``python -m papers``).

A reproduction lives in ``papers/<name>/reproduce.py`` and registers itself::

    from papers._harness import PaperOutput, register_paper

    @register_paper("ivashkin2016", title="...", citation="...")
    def run(ctx):                     # ctx: RunContext (scale, seed, key, out, progress)
        for item in ctx.progress(grid, desc="graphs"):
            ...
        return PaperOutput(figure=fig, results={...}, parameters={...})

The runner writes ``figure.png`` and ``results.json`` (parameters, seed, versions, numbers,
wall time) under ``--out`` (default ``results/<name>/``), each atomically (temporary file in
the same folder, then ``os.replace``).
"""

from __future__ import annotations

import importlib
import io
import pkgutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from theorylab.core.io import environment_info, write_bytes_atomic, write_json_atomic
from theorylab.core.registry import Registry

__all__ = [
    "PAPERS",
    "Paper",
    "PaperOutput",
    "RunContext",
    "discover",
    "register_paper",
    "run_one_in_process",
    "run_paper",
]

Scale = Literal["quick", "full"]


@dataclass(frozen=True)
class Paper:
    name: str
    title: str
    citation: str
    run: Callable[[RunContext], PaperOutput]


@dataclass
class PaperOutput:
    """What a reproduction returns: a matplotlib figure, the numbers, and its parameters."""

    figure: Any
    results: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything a reproduction needs from the harness."""

    name: str
    scale: Scale
    seed: int
    out: Path
    show_progress: bool = True

    @property
    def quick(self) -> bool:
        return self.scale == "quick"

    @property
    def key(self):
        import jax

        return jax.random.key(self.seed)

    def progress(self, iterable: Iterable, desc: str, total: int | None = None):
        """A tqdm progress bar over ``iterable`` (silent when progress is disabled)."""
        from tqdm.auto import tqdm

        return tqdm(
            iterable,
            desc=f"{self.name}: {desc}",
            total=total,
            disable=not self.show_progress,
            leave=False,
        )

    def save_figure(self, figure, filename: str = "figure.png", dpi: int = 130) -> Path:
        buffer = io.BytesIO()
        figure.savefig(
            buffer, format=Path(filename).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight"
        )
        return write_bytes_atomic(self.out / filename, buffer.getvalue())

    def save_json(self, obj: Any, filename: str) -> Path:
        return write_json_atomic(self.out / filename, obj)


PAPERS: Registry[Paper] = Registry("paper")
_DISCOVERED = False


def register_paper(name: str, *, title: str, citation: str = ""):
    """Decorator registering ``run(ctx) -> PaperOutput`` under ``name``."""

    def decorator(run: Callable[[RunContext], PaperOutput]):
        PAPERS.add(name, Paper(name=name, title=title, citation=citation, run=run))
        return run

    return decorator


def discover() -> Registry[Paper]:
    """Import ``papers/<pkg>/reproduce.py`` for every sub-package so each registers itself."""
    global _DISCOVERED
    if not _DISCOVERED:
        import papers

        for info in sorted(pkgutil.iter_modules(papers.__path__), key=lambda m: m.name):
            if info.ispkg and not info.name.startswith("_"):
                importlib.import_module(f"papers.{info.name}.reproduce")
        _DISCOVERED = True
    return PAPERS


def run_paper(
    name: str,
    *,
    scale: Scale = "quick",
    out: str | Path | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run one registered reproduction and write ``figure.png`` + ``results.json``.

    Returns the dictionary written to ``results.json``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if scale not in ("quick", "full"):
        raise ValueError(f"scale must be 'quick' or 'full'; got {scale!r}")
    paper = PAPERS[name]
    out_dir = Path(out) if out is not None else Path("results") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(name=name, scale=scale, seed=seed, out=out_dir, show_progress=show_progress)
    start = time.perf_counter()
    output = paper.run(ctx)
    elapsed = time.perf_counter() - start
    if not isinstance(output, PaperOutput):
        raise TypeError(f"paper {name!r} must return a PaperOutput; got {type(output).__name__}")
    ctx.save_figure(output.figure, "figure.png")
    plt.close(output.figure)
    record = {
        "paper": name,
        "title": paper.title,
        "citation": paper.citation,
        "scale": scale,
        "seed": seed,
        "parameters": output.parameters,
        "results": output.results,
        "elapsed_s": elapsed,
        "environment": environment_info(),
    }
    ctx.save_json(record, "results.json")
    return record


def run_one_in_process(name, scale_name, out, seed, show_progress):
    """Worker of ``python -m papers --jobs J``: discover, run one paper, return a summary.

    Lives here (an importable module), not in ``papers/__main__``, so that spawned worker
    processes can unpickle it.
    """
    discover()
    record = run_paper(name, scale=scale_name, out=out, seed=seed, show_progress=show_progress)
    return name, scale_name, out, record["elapsed_s"]
