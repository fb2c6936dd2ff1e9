"""The CPU benchmark runs end to end in its --quick mode (tiny sizes). Only that it works is
checked: no timing is asserted, timings belong in benchmarks/RESULTS.md."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "bench_cpu.py")


def test_bench_cpu_quick_mode_runs_and_writes_its_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--threads", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out.read_text()
    for heading in ("## Whole network", "## Layers, forward + backward", "## Data loader", "| machine | |"):
        assert heading in report
    for row in ("| train b2 |", "| eval b2 |", "| conv1 |", "| lrn2 |", "| pool5 |", "| fc6 |", "| sgd update |"):
        assert row in report, row
    assert "minitorch_alex backend: `fast`" in report
    torch_installed = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    if torch_installed:  # both frameworks measured side by side, and the targets table filled in
        assert "## Targets (issue #4)" in report and "PyTorch" in report


def test_bench_cpu_report_keeps_the_training_runs_section(tmp_path):
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import bench_cpu
    finally:
        sys.path.pop(0)
    out = tmp_path / "RESULTS.md"
    bench_cpu.write_keeping_other_sections(str(out), "# old report\n")
    out.write_text(out.read_text() + "\n## Training runs\n\nFashion-MNIST: 90%\n")
    bench_cpu.write_keeping_other_sections(str(out), "# new report\n\n| a | b |\n")
    assert out.read_text() == "# new report\n\n| a | b |\n\n## Training runs\n\nFashion-MNIST: 90%\n"
