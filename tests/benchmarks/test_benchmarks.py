"""The CPU benchmark runs end to end in its --quick mode (tiny sizes), and its report computes the
ratios against the fastest PyTorch configuration. Only that it works is checked: no timing is
asserted, timings belong in benchmarks/RESULTS.md."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from paths import ROOT

SCRIPT = os.path.join(ROOT, "benchmarks", "bench_cpu.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
try:
    import bench_cpu
    import cpu_report
finally:
    sys.path.pop(0)

TORCH_INSTALLED = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def test_bench_cpu_quick_mode_runs_and_writes_every_column(tmp_path):
    out = tmp_path / "RESULTS.md"
    # aot_eager: the torch.compile path (Dynamo + AOTAutograd) without inductor's C++ builds,
    # which take minutes; the full run uses inductor
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--threads", "2", "--compile-backend", "aot_eager",
                           "--out", str(out)], capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out.read_text()
    for heading in ("## Whole network", "### Peak RSS", "## Layers, forward + backward", "## Data loader",
                    "| machine | |", "## NumPy sgemm", "| 1 thread(s) | 2 thread(s) |", "| mt floor (ms) |"):
        assert heading in report
    for row in ("| train b2 |", "| eval b2 |", "| conv1 |", "| lrn2 |", "| pool5 |", "| fc6 |", "| sgd update |"):
        assert row in report, row
    backend = next(line for line in report.splitlines() if line.startswith("minitorch_alex backend:"))
    assert "`reference`" not in backend and "retain_freed_memory` on" in backend
    if not TORCH_INSTALLED:
        return
    configs, unavailable = bench_cpu.torch_configurations(list(bench_cpu.TORCH_CONFIGS))
    assert len(configs) + len(unavailable) == len(bench_cpu.TORCH_CONFIGS)
    whole = report[report.index("## Whole network"):report.index("### Peak RSS")]
    layers = report[report.index("## Layers"):report.index("### Convolutions")]
    for participant in configs:  # every configuration a column of each table, and measured
        heading = cpu_report.column(participant)
        for table in (whole, layers):
            assert f"| {heading} |" in table.splitlines()[2], (heading, table.splitlines()[2])
        assert f"| {heading} | failed" not in report
    for name in unavailable:
        assert f"| torch {name} | not measured:" in report
    seen = report[report.index("## PyTorch configurations"):report.index("## Whole network")]
    assert "| torch default | glibc defaults |" in seen
    assert "| torch tuned | glibc MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=2147483647 |" in seen
    for lib in ("jemalloc", "tcmalloc"):  # an LD_PRELOADed allocator really ran in its children
        if f"torch:{lib}+CL" in configs:
            assert f"| torch {lib}+CL | {lib} |" in seen
    assert "## Targets (issues #4 and #16), against the fastest PyTorch" in report
    assert "peak RSS of the evaluation forward, batch 2" in report


def test_child_env_starts_every_child_without_inherited_allocator_settings(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/somewhere/libjemalloc.so.2")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    env = bench_cpu.child_env(3)
    assert "LD_PRELOAD" not in env and "MALLOC_TRIM_THRESHOLD_" not in env
    assert env["OMP_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == "3"
    assert bench_cpu.child_env(3, bench_cpu.GLIBC_TUNED)["MALLOC_MMAP_MAX_"] == "0"


def test_allocator_libraries_are_found_not_installed(monkeypatch):
    monkeypatch.setattr(bench_cpu, "find_allocator", lambda name: "/lib/libjemalloc.so.2" if name == "jemalloc" else None)
    configs, unavailable = bench_cpu.torch_configurations(["default", "jemalloc+CL", "tcmalloc+CL"])
    assert configs["torch:default"]["env"] == {}
    assert configs["torch:jemalloc+CL"]["env"]["LD_PRELOAD"] == "/lib/libjemalloc.so.2"
    assert configs["torch:jemalloc+CL"]["channels_last"]
    assert list(unavailable) == ["tcmalloc+CL"] and "libtcmalloc-minimal4" in unavailable["tcmalloc+CL"]


@pytest.mark.parametrize("lib", ["jemalloc", "tcmalloc"])
def test_a_child_reports_the_allocator_it_really_runs_on(lib):
    path = bench_cpu.find_allocator(lib)
    if path is None:
        pytest.skip(f"no {lib} library on this machine")
    code = "import cpu_child; print(cpu_child.allocator_in_use())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(SCRIPT),
                          env=bench_cpu.child_env(1, {"LD_PRELOAD": path}), check=True)
    assert proc.stdout.strip() == lib
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(SCRIPT),
                           env=bench_cpu.child_env(1, bench_cpu.GLIBC_TUNED), check=True)
    assert plain.stdout.strip() == "glibc MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=2147483647"


def test_unknown_torch_configuration_names_expected_and_given():
    with pytest.raises(Exception, match=r"expected 'all' or names from default, .*got 'fast'"):
        bench_cpu.parse_torch_configs("fast")
    assert bench_cpu.parse_torch_configs("all") == list(bench_cpu.TORCH_CONFIGS)


def _step(seconds, rss, **extra):
    return dict({"times": [seconds], "first_s": seconds, "peak_rss_mb": rss}, **extra)


def test_targets_are_checked_against_the_fastest_pytorch_with_the_default_beside():
    """Against the default minitorch_alex would pass 2.5x at batch 128; against the tuned
    configuration (faster, and with a higher peak RSS) it does not: the verdict follows the fastest."""
    mt, default, tuned, comp = "minitorch_alex", "torch:default", "torch:tuned", "torch:tuned+CL+compile"
    raw = {"train b128": {mt: [_step(2.0, 900, backend="numba", retain_freed_memory=True)],
                          default: [_step(6.0, 800)], tuned: [_step(4.0, 1000)], comp: [{"failed": "X: y", "peak_rss_mb": 0}]},
           "eval b128": {mt: [_step(0.5, 900)], default: [_step(1.5, 700)], tuned: [_step(1.4, 750)],
                         comp: [{"failed": "X: y", "peak_rss_mb": 0}]}}
    configs = {p: {"channels_last": False, "compile": p == comp, "env": {}} for p in (default, tuned, comp)}
    configs["_unavailable"] = {"jemalloc+CL": "no jemalloc library found"}
    args = SimpleNamespace(rounds=1, warmup=0, threads=2, batches=[128], layer_batch=128)
    report = cpu_report.build_report(args, {}, "python benchmarks/bench_cpu.py", "now", 0.0, raw, {},
                                     [mt, default, tuned, comp], configs)
    rows = {}  # first column -> the first row it starts (the images/s table comes before the RSS table)
    for line in report.splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0], line)
    assert "| torch tuned | **2.00x** | 3.00x |" in rows["| train b128"]
    assert "| failed |" in rows["| train b128"]
    target = rows["| training step, batch 128: >= 2.5x the fastest PyTorch's images/s"]
    assert "2.00x (torch tuned) | NOT met | 3.00x |" in target
    rss = rows["| peak RSS of the training step, batch 128: no higher than the fastest PyTorch's"]
    assert "900 MB vs 1000 MB (torch tuned) | met | 900 MB vs 800 MB |" in rss
    assert "2.80x (torch tuned) | met | 3.00x |" in rows["| evaluation forward, batch 128: >= 2.5x the fastest PyTorch's images/s"]
    assert "**failed**: X: y" in report and "| torch jemalloc+CL | not measured: no jemalloc library found" in report


def test_bench_cpu_report_keeps_the_training_runs_section(tmp_path):
    out = tmp_path / "RESULTS.md"
    bench_cpu.write_keeping_other_sections(str(out), "# old report\n")
    out.write_text(out.read_text() + "\n## Training runs\n\nFashion-MNIST: 90%\n")
    bench_cpu.write_keeping_other_sections(str(out), "# new report\n\n| a | b |\n")
    assert out.read_text() == "# new report\n\n| a | b |\n\n## Training runs\n\nFashion-MNIST: 90%\n"
    assert os.listdir(tmp_path) == ["RESULTS.md"]  # the temporary file of the atomic write is gone


def test_step_budget_arithmetic(tmp_path, capsys):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import step_budget

    layers = "\n".join(f"| {name} | {f} | {b} | {f + b} | x |" for name, f, b in
                       [("conv1", 100.0, 100.0), ("conv2", 100.0, 200.0), ("conv3", 50.0, 100.0),
                        ("conv4", 50.0, 100.0), ("conv5", 50.0, 100.0)])
    floors = "\n".join(f"| {name} | 1 | 1 | {fl} | x |" for name, fl in
                       [("conv1", 40.0), ("conv2", 30.0), ("conv3", 60.0), ("conv4", 60.0), ("conv5", 60.0)])
    (tmp_path / "R.md").write_text(
        "## Whole network: images/s\n\n| measurement | minitorch_alex | torch a | fastest PyTorch |\n|---|---|---|---|\n"
        "| train b128 | 1 (2000 ms) | 1 (3000 ms) | torch a |\n| eval b128 | 1 (800 ms) | 1 (1000 ms) | torch a |\n\n"
        "## Layers, forward + backward, batch 128 (ms)\n\n| layer | mt fwd | mt bwd | mt total | x |\n|---|---|---|---|---|\n"
        + layers + "\n\n### Convolutions against the GEMM floor\n\nNumPy's sgemm (OpenBLAS) reaches 200 GFLOP/s at 2048^3.\n\n"
        "| layer | direct GFLOP | im2col | mt floor (ms) | x |\n|---|---|---|---|---|\n" + floors + "\n")
    step_budget.main(["--results", str(tmp_path / "R.md")])
    out = capsys.readouterr().out
    fc = 3 * 2 * 128 * (9216 * 4096 + 4096 * 4096 + 4096 * 1000) / 200e9 * 1e3  # ms: fc6-8 forward + 2 backward GEMMs
    # batch 128: allows 3000 / 2.5 = 1200; GEMM floor 250 + fc; the transforms are 'mt total' - 'mt floor' summed
    transforms = (200 - 40) + (300 - 30) + 3 * (150 - 60)
    rest = 2000 - (250 + fc) - transforms
    assert f"| 1200 | 2000 | {250 + fc:.0f} = 250 + {fc:.0f} | {transforms} | {rest:.0f} |" in out, out
    assert f"none: {250 + fc + rest - 1200:.0f} over before any transform" in out
    assert "batch 32" not in out  # no such row in the results: no such target line
    conv_fwd_floor = 40 / 2 + (30 + 60 + 60 + 60) / 3
    assert f"| 400 | 800 | {conv_fwd_floor + fc / 3:.0f} = {conv_fwd_floor:.0f} + {fc / 3:.0f} |" in out, out


def test_winograd_error_table_replaces_its_section_and_keeps_the_reading(tmp_path):
    """benchmarks/winograd_error.py measures every algorithm of every AlexNet layer and rewrites only
    its own section of RESULTS.md (its numbers are the report, not checked here: the kernels' tests
    bound the errors)."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import winograd_error
    finally:
        sys.path.pop(0)
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# report\n\n{winograd_error.SECTION}\n\nold table\n\n{winograd_error.END}\nreading by hand\n")
    assert winograd_error.main(["--batch", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "old table" not in text and text.startswith("# report\n\n" + winograd_error.SECTION)
    assert text.endswith(winograd_error.END + "\nreading by hand\n")
    rows = [line for line in text.splitlines() if line.startswith("| conv")]
    assert len(rows) == sum(len(layer[-1]) for layer in winograd_error.LAYERS) == 14
    assert "| conv3 | **winograd5** |" in text and "| conv1 | **polyphase F(5x5)** |" in text


def test_fusion_probe_tables_replace_their_section_and_leave_the_kernels_as_they_were(tmp_path, monkeypatch):
    """benchmarks/fusion_probe.py (issue #31's block-size evidence) writes both tables for every
    Winograd layer into its own section, keeps the reading below it, sizes 'tiles in L2' from the
    cache it is given, and puts the chunk budget it sweeps back."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import fusion_probe
    finally:
        sys.path.pop(0)
    from minitorch_alex_kernels.cpu import conv

    budget = conv.WINOGRAD_TARGET_BYTES, conv.WINOGRAD_MIN_TILES
    monkeypatch.setattr(fusion_probe, "cache_bytes", lambda level: {2: 512 << 10, 3: 32 << 20}[level])
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# report\n\n{fusion_probe.SECTION}\n\nold\n\n{fusion_probe.END}\nreading by hand\n")
    assert fusion_probe.main(["--batch", "2", "--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "old" not in text and text.endswith(fusion_probe.END + "\nreading by hand\n")
    assert (conv.WINOGRAD_TARGET_BYTES, conv.WINOGRAD_MIN_TILES) == budget
    assert "L2 0.5 MiB per core, L3 32 MiB" in text
    # one L2 of 512 KiB holds 18 tiles of conv1 (49 values x (48 + 96) channels x 4 bytes) and 4 of conv3
    assert "| conv1 | 96 x 48 | 18 |" in text and "| conv3 | 384 x 256 | 4 |" in text
    assert "| conv4 | 192 x 192 | 3 |" in text and "| conv5 | 128 x 192 | 4 |" in text
    sweep = [line for line in text.splitlines() if line.startswith("| conv") and " MB" not in line and " x " not in line]
    assert [line.split(" | ")[0] for line in sweep] == ["| conv1", "| conv3", "| conv4", "| conv5"]
    assert all(line.count("(") == len(fusion_probe.BUDGETS_MB) for line in sweep)
