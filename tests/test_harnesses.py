"""The papers/ and benchmarks/ harnesses and the console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks
import papers
from benchmarks import _harness as bench_harness
from papers import _harness as paper_harness
from theorylab import cli

ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def fake_paper():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = {}

    @papers.register_paper("unit_test_paper", title="harness check")
    def run(ctx):
        seen["items"] = list(ctx.progress(range(3), desc="loop"))
        seen["scale"] = ctx.scale
        fig, ax = plt.subplots()
        ax.plot([0, 1], [ctx.seed, ctx.seed + 1])
        return papers.PaperOutput(figure=fig, results={"value": ctx.seed * 2}, parameters={"n": 3})

    yield seen
    papers.PAPERS.remove("unit_test_paper")


def test_run_paper_writes_figure_and_json(fake_paper, tmp_path):
    record = papers.run_paper(
        "unit_test_paper", scale="quick", out=tmp_path, seed=7, show_progress=False
    )
    assert fake_paper == {"items": [0, 1, 2], "scale": "quick"}
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["results"] == {"value": 14} and data["seed"] == 7
    assert data["parameters"] == {"n": 3} and data["environment"]["versions"]["jax"]
    assert record["paper"] == "unit_test_paper"
    png = (tmp_path / "figure.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "results.json"]


def test_papers_cli_in_process(fake_paper, tmp_path, capsys):
    from papers.__main__ import main

    assert main(["--list"]) == 0
    assert "unit_test_paper" in capsys.readouterr().out
    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown paper(s): nope" in err and "unit_test_paper" in err
    assert (
        main(["unit_test_paper", "--quick", "--out", str(tmp_path), "--seed", "1", "--no-progress"])
        == 0
    )
    assert json.loads((tmp_path / "results.json").read_text())["results"]["value"] == 2


def test_run_paper_rejects_bad_scale(fake_paper, tmp_path):
    with pytest.raises(ValueError, match="scale must be 'quick' or 'full'"):
        papers.run_paper("unit_test_paper", scale="medium", out=tmp_path)


def test_papers_cli_subprocess_list_and_bad_name():
    listed = run_module("papers", "--list")
    assert listed.returncode == 0, listed.stderr
    bad = run_module("papers", "definitely_not_a_paper", "--quick")
    assert bad.returncode == 2
    assert "unknown paper(s): definitely_not_a_paper; valid names:" in bad.stderr
    assert run_module("papers").returncode == 2


def test_every_registered_paper_has_a_readme():
    registry = paper_harness.discover()
    for name in registry:
        if name == "unit_test_paper":
            continue
        assert (ROOT / "papers" / name / "README.md").exists(), name


@pytest.fixture
def fake_benchmark():
    @benchmarks.register_benchmark("unit_test_bench", description="harness check")
    def run(ctx):
        ours = ctx.time(lambda: sum(range(100)), repeats=3)
        peer = ctx.time(lambda: sum(range(1000)), repeats=3)
        ctx.record(
            "tiny",
            sizes={"n": 100},
            ours=ours,
            peer=peer,
            peer_name="python",
            error=0.0,
            tolerance=1e-9,
        )
        ctx.record(
            "bad",
            sizes={"n": 100},
            ours=ours,
            peer=peer,
            peer_name="python",
            error=1.0,
            tolerance=1e-9,
        )

    yield
    benchmarks.BENCHMARKS.remove("unit_test_bench")


def test_run_benchmark_writes_json_with_ratio(fake_benchmark, tmp_path, capsys):
    record = benchmarks.run_benchmark("unit_test_bench", quick=True, out_dir=tmp_path)
    data = json.loads((tmp_path / "unit_test_bench.json").read_text())
    assert data["rows"][0]["ratio"] > 0 and data["rows"][0]["agree"] is True
    assert data["rows"][1]["agree"] is False and data["all_agree"] is False
    assert record["environment"]["device_kind"]
    out = capsys.readouterr().out
    assert "peer/ours" in out and "NO" in out


def test_benchmarks_cli(fake_benchmark, tmp_path, capsys):
    from benchmarks.__main__ import main

    assert main(["--list"]) == 0
    assert "unit_test_bench" in capsys.readouterr().out
    assert main(["missing"]) == 2
    assert "valid names:" in capsys.readouterr().err
    # disagreement beyond tolerance -> exit status 1
    assert main(["unit_test_bench", "--quick", "--out", str(tmp_path)]) == 1


def test_benchmarks_cli_subprocess():
    assert run_module("benchmarks", "--list").returncode == 0
    bad = run_module("benchmarks", "nope")
    assert bad.returncode == 2 and "unknown benchmark(s): nope" in bad.stderr


def test_time_call_blocks_and_separates_first_call():
    timing = bench_harness.time_call(lambda: 1 + 1, repeats=3)
    assert timing.value == 2 and len(timing.times_s) == 3
    assert timing.compile_s >= 0
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        bench_harness.time_call(lambda: 1, repeats=0)


def test_console_script_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "jax" in out and "x64 enabled: False" in out and "devices:" in out
    assert cli.main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["x64_enabled"] is False
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert "theorylab 0." in capsys.readouterr().out


def test_parallel_papers_start_longest_first():
    from papers.__main__ import expected_seconds

    assert expected_seconds("no_such_paper", "quick") == float("inf")
    slow, fast = expected_seconds("ivashkin2016", "quick"), expected_seconds("dwork2015", "quick")
    assert slow > fast > 0
