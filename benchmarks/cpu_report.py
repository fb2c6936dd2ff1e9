"""The report of ``bench_cpu.py``: the tables of benchmarks/RESULTS.md from the children's results.

``raw`` maps a measurement label ("train b128", "eval b128", "layers b128") to a participant
("minitorch_alex", or "torch:<configuration>" for each PyTorch configuration of
``bench_cpu.TORCH_CONFIGS``) to the list of its children's results (one per round). Every
ratio is computed twice: against the *fastest* PyTorch configuration of that row (the one a
careful user would run; it decides the targets) and against PyTorch's default (beside it).
Peak RSS is compared with the process of the configuration that was fastest in that row.
"""
from __future__ import annotations

import json
import math
import statistics

MT = "minitorch_alex"
DEFAULT = "torch:default"

# what issues #4 and #16 ask for; each is checked against the fastest PyTorch
TARGETS = {
    "train_speedup_b128": 2.5, "train_speedup_b32": 2.0, "eval_speedup_b128": 2.5,
    "conv_time_ratio": 0.8, "lrn_speedup": 5.0, "pool_speedup": 2.0, "loader_over_trainer": 5.0,
}
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
# multiply-adds of minitorch_alex's algorithm per layer over an im2col convolution's (kernels/cpu/conv.py)
# multiply-adds of the algorithm each layer trains with (float32), over im2col's (kernels/cpu/conv.py)
CONV_MACS_RATIO = {"conv1": 0.26, "conv2": 0.10, "conv3": 0.29, "conv4": 0.29, "conv5": 0.29}
NAN = float("nan")


def median(xs):
    return statistics.median(xs) if xs else NAN


def ok_results(results):
    """The results of the children that measured (a torch.compile child may report ``failed``)."""
    return [r for r in results or [] if "failed" not in r]


def _pool(results, key="times"):
    return [t for r in ok_results(results) for t in r.get(key, [])]


def column(participant):
    """Table heading of a participant: 'minitorch_alex', 'torch default', 'torch tuned+CL', ..."""
    return participant if participant == MT else "torch " + participant.split(":", 1)[1]


def brief(res):
    """One line about a child's result, for the progress log."""
    if "failed" in res:
        return f"FAILED: {res['failed']}"
    if "times" in res and res["times"]:
        return (f"median {median(res['times']):.3f} s, first {res.get('first_s', NAN):.2f} s, "
                f"peak RSS {res['peak_rss_mb']:.0f} MB, {res.get('allocator', '?')}")
    if "layers" in res:
        return ", ".join(f"{k} {1e3 * (median(v['fwd']) + median(v['bwd'])):.0f}" for k, v in res["layers"].items()) + " ms"
    return json.dumps(res)[:200]


def fastest_torch(values, torch_names):
    """(participant, value) of the smallest finite value among the PyTorch columns, or (None, nan)."""
    finite = [(values[p], p) for p in torch_names if p in values and math.isfinite(values[p])]
    if not finite:
        return None, NAN
    value, name = min(finite)
    return name, value


def _x(v, digits=2):
    return f"{v:.{digits}f}x" if math.isfinite(v) else "-"


def _verdict(ok):
    return "met" if ok else "NOT met"


def build_report(args, machine, command, started, others, raw, extras, participants, configs):
    """The markdown of RESULTS.md. ``configs`` maps each torch participant to its configuration
    (``bench_cpu.torch_configurations``): description, environment, what the child saw."""
    torch_names = [p for p in participants if p != MT]
    lines = ["# CPU benchmark: minitorch_alex vs PyTorch, AlexNet (paper version: groups, LRN, dropout)", ""]
    lines += [f"Command: `{command.strip()}`", "",
              f"Started {started}. Other processes kept {others:.0%} of the machine's cores busy during the run "
              "(they slow every column; the columns alternate, so the ratios suffer less).", "",
              "| machine | |", "|---|---|"]
    for key in ("cpu", "cores", "threads", "blas", "blas_runtime", "platform", "python", "numpy", "numba", "torch", "commit"):
        lines.append(f"| {key} | {machine.get(key, '')} |")
    mt_results = [r for v in raw.values() for r in v.get(MT, [])]
    backend = next((r.get("backend") for r in mt_results if r.get("backend")), "?")
    retained = any(r.get("retain_freed_memory") for r in mt_results)
    lines += ["", f"minitorch_alex backend: `{backend}`, allocator: glibc with `retain_freed_memory` "
              f"{'on' if retained else 'OFF'} (no mmap, no trim). Times are medians over {args.rounds} alternating "
              f"rounds x repeats after {args.warmup} warm-up step(s); each measurement in its own process, "
              f"every framework and configuration on {args.threads} thread(s).", ""]
    lines += _config_table(raw, torch_names, configs)
    checks = []
    trainer_ips = _whole_network(lines, checks, raw, torch_names, args)
    if "cold" in extras:
        lines += ["", f"First training step with an *empty* numba cache (compiling every kernel; once per machine, "
                      f"then cached next to the source): {extras['cold']['first_s']:.1f} s at batch {min(args.batches)}."]
    layer_label = next((k for k in raw if k.startswith("layers")), None)
    sgemm = extras.get("sgemm") or {}
    if sgemm:
        lines += ["", "## NumPy sgemm (the BLAS), GFLOP/s, best of the repeats", "",
                  "| GEMM (M x K x N) | " + " | ".join(f"{t} thread(s)" for t in sorted(sgemm)) + " |",
                  "|---" * (len(sgemm) + 1) + "|"]
        for shape in next(iter(sgemm.values())):
            lines.append(f"| {shape} | " + " | ".join(f"{sgemm[t][shape]:.0f}" for t in sorted(sgemm)) + " |")
    if layer_label:
        rate = (sgemm.get(args.threads) or {}).get("2048x2048x2048")
        _layers(lines, checks, raw[layer_label], torch_names, args.layer_batch, rate)
    if "loader" in extras:
        _loader(lines, checks, extras["loader"], trainer_ips)
    if checks:
        lines += ["", "## Targets (issues #4 and #16), against the fastest PyTorch", "",
                  "| target | measured (fastest PyTorch) | | against PyTorch's default |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in checks]
    lines.append("")
    return "\n".join(lines)


def _config_table(raw, torch_names, configs):
    if not torch_names:
        return ["PyTorch was not measured.", ""]
    lines = ["## PyTorch configurations", "",
             "Each column is PyTorch in its own processes. 'fastest' in every table below is, per row, the "
             "quickest of these columns; the targets are checked against it.", "",
             "| column | allocator (seen in the process) | memory format | torch.compile | environment |",
             "|---|---|---|---|---|"]
    for p in torch_names:
        cfg = configs[p]
        results = [r for v in raw.values() for r in v.get(p, [])]
        seen = sorted({r.get("allocator", "?") for r in results if r.get("allocator")})
        env = " ".join(f"{k}={v}" for k, v in cfg.get("env", {}).items()) or "-"
        comp = f"yes ({cfg.get('compile_backend', 'inductor')})" if cfg.get("compile") else "no"
        lines.append(f"| {column(p)} | {', '.join(seen) or '-'} | {'channels_last' if cfg.get('channels_last') else 'NCHW'} "
                     f"| {comp} | `{env}` |")
        failures = sorted({r["failed"] for r in results if "failed" in r})
        if failures:
            lines.append(f"| | **failed**: {'; '.join(failures)} | | | |")
    for name, why in sorted(configs.get("_unavailable", {}).items()):
        lines.append(f"| torch {name} | not measured: {why} | | | |")
    return lines + [""]


def _whole_network(lines, checks, raw, torch_names, args):
    """The images/s and peak-RSS tables; appends the targets to ``checks``; returns mt's img/s per batch."""
    cols = [MT] + torch_names
    head = "| measurement | " + " | ".join(column(p) for p in cols)
    ips_lines = ["## Whole network: images/s (median step time)", "",
                 head + " | fastest PyTorch | speedup vs fastest | vs default |",
                 "|---" * (len(cols) + 4) + "|"]
    rss_lines = ["", "### Peak RSS (MB) and first step (s), each in its own process", "",
                 head + " |", "|---" * (len(cols) + 1) + "|"]
    trainer_ips = {}
    for label, per in raw.items():
        if label.startswith("layers"):
            continue
        n = int(label.split("b")[-1])
        times = {p: median(_pool(per.get(p))) for p in cols}
        ips = {p: n / t for p, t in times.items()}
        rss = {p: max([r["peak_rss_mb"] for r in ok_results(per.get(p))], default=NAN) for p in cols}
        first = {p: median([r["first_s"] for r in ok_results(per.get(p))]) for p in cols}
        best, _ = fastest_torch(times, torch_names)
        vs_best = times[best] / times[MT] if best else NAN
        vs_def = times[DEFAULT] / times[MT] if DEFAULT in times else NAN
        cells = [f"{ips[p]:.1f} ({times[p] * 1e3:.0f} ms)" if math.isfinite(times[p]) else _failed_cell(per.get(p))
                 for p in cols]
        ips_lines.append(f"| {label} | " + " | ".join(cells) + f" | {column(best) if best else '-'} | **{_x(vs_best)}** | "
                         f"{_x(vs_def)} |")
        rss_lines.append(f"| {label} | " + " | ".join(f"{rss[p]:.0f} MB, {first[p]:.2f} s" if math.isfinite(rss[p])
                                                      else "-" for p in cols) + " |")
        kind = label.split()[0]
        if kind == "train":
            trainer_ips[n] = ips[MT]
        if not best:
            continue
        goal = {("train", 128): "train_speedup_b128", ("train", 32): "train_speedup_b32",
                ("eval", 128): "eval_speedup_b128"}.get((kind, n))
        what = "training step" if kind == "train" else "evaluation forward"
        if goal:
            checks.append((f"{what}, batch {n}: >= {TARGETS[goal]}x the fastest PyTorch's images/s",
                           f"{vs_best:.2f}x ({column(best)})", _verdict(vs_best >= TARGETS[goal]), _x(vs_def)))
        checks.append((f"peak RSS of the {what}, batch {n}: no higher than the fastest PyTorch's",
                       f"{rss[MT]:.0f} MB vs {rss[best]:.0f} MB ({column(best)})", _verdict(rss[MT] <= rss[best]),
                       f"{rss[MT]:.0f} MB vs {rss.get(DEFAULT, NAN):.0f} MB"))
    lines += ips_lines + rss_lines
    return trainer_ips


def _failed_cell(results):
    return "failed" if results and not ok_results(results) else "-"


def _layer_totals(per, p, name):
    res = ok_results(per.get(p))
    if not res:
        return NAN, NAN
    return (median([t for r in res for t in r["layers"][name]["fwd"]]),
            median([t for r in res for t in r["layers"][name]["bwd"]]))


def _layers(lines, checks, per, torch_names, batch, sgemm_rate=None):
    lines += ["", f"## Layers, forward + backward, batch {batch} (ms)", "",
              "| layer | mt fwd | mt bwd | mt total | " + " | ".join(column(p) for p in torch_names)
              + " | fastest PyTorch | mt / fastest time | speedup vs fastest | vs default |",
              "|---" * (len(torch_names) + 8) + "|"]
    mt_res = ok_results(per.get(MT))
    names = list(mt_res[0]["layers"]) if mt_res else []
    for name in names:
        fwd, bwd = _layer_totals(per, MT, name)
        tot = {p: sum(_layer_totals(per, p, name)) for p in torch_names}
        best, best_t = fastest_torch(tot, torch_names)
        mine = fwd + bwd
        ratio = mine / best_t if best else NAN
        vs_def = tot[DEFAULT] / mine if DEFAULT in tot else NAN
        lines.append(f"| {name} | {fwd * 1e3:.1f} | {bwd * 1e3:.1f} | {mine * 1e3:.1f} | "
                     + " | ".join(f"{tot[p] * 1e3:.1f}" if math.isfinite(tot[p]) else _failed_cell(per.get(p))
                                  for p in torch_names)
                     + f" | {column(best) if best else '-'} | {ratio:.2f} | {_x(1 / ratio)} | {_x(vs_def)} |")
        if not best:
            continue
        if name in CONV_LAYERS:
            checks.append((f"{name} forward+backward <= {TARGETS['conv_time_ratio']}x the fastest PyTorch's time",
                           f"{ratio:.2f}x ({column(best)})", _verdict(ratio <= TARGETS["conv_time_ratio"]),
                           _x(mine / tot[DEFAULT]) if DEFAULT in tot else "-"))
        elif name.startswith(("lrn", "pool")):
            goal = TARGETS["lrn_speedup" if name.startswith("lrn") else "pool_speedup"]
            checks.append((f"{name} >= {goal}x faster than the fastest PyTorch", f"{1 / ratio:.1f}x ({column(best)})",
                           _verdict(1 / ratio >= goal), _x(vs_def, 1)))
    lines += _conv_profile(per, torch_names, sgemm_rate)


def _conv_profile(per, torch_names, sgemm_rate=None):
    """The convolution layers against what plain GEMMs can do on this machine (cpu_child._gemm_floor):
    ``sgemm_rate`` (GFLOP/s, default: the layers child's own 2048^3 measurement) sets the floor of
    minitorch_alex's algorithm, its multiply-adds (CONV_MACS_RATIO) at that rate."""
    gemm = next((r["gemm"] for r in ok_results(per.get(MT)) if "gemm" in r), None)
    if not gemm:
        return []
    rate = sgemm_rate or gemm["sgemm_2048_gflops"]
    algos = ", ".join(f"{n} {r:.2f}x" for n, r in CONV_MACS_RATIO.items())
    lines = ["", "### Convolutions against the GEMM floor", "",
             f"NumPy's sgemm (OpenBLAS) reaches {rate:.0f} GFLOP/s at 2048^3 here. "
             "'im2col GEMMs' is the time of the forward, weight-gradient and input-gradient GEMMs alone "
             "(conv1: no input gradient) of a direct im2col convolution of the batch; GFLOP/s count "
             "direct-convolution FLOPs, so layers computed with fewer multiply-adds can exceed the GEMM rate: "
             "conv1 as a 3x3 convolution of its polyphase components by Winograd's F(5x5, 3x3), "
             "conv2 in the frequency domain, conv3-5 by F(5x5, 3x3); their multiply-adds over im2col's: "
             f"{algos}. 'mt floor' is those multiply-adds at {rate:.0f} GFLOP/s: the time of the GEMMs alone, "
             "without the transforms.", "",
             "| layer | direct GFLOP | im2col GEMMs alone (ms) | mt floor (ms) | mt total (ms) | mt GFLOP/s | "
             "fastest torch (ms) | its GFLOP/s | torch default (ms) | fastest torch / GEMMs alone |", "|---" * 10 + "|"]
    for name in CONV_LAYERS:
        if name not in gemm:
            continue
        g = gemm[name]
        mine = sum(_layer_totals(per, MT, name))
        tot = {p: sum(_layer_totals(per, p, name)) for p in torch_names}
        best, best_t = fastest_torch(tot, torch_names)
        gf = g["flops"] / 1e9
        row = [name, f"{gf:.1f}", f"{g['gemm_s'] * 1e3:.0f}", f"{gf * CONV_MACS_RATIO[name] / rate * 1e3:.0f}",
               f"{mine * 1e3:.0f}", f"{gf / mine:.0f}"]
        row += ([f"{best_t * 1e3:.0f} ({column(best)})", f"{gf / best_t:.0f}"] if best else ["-", "-"])
        row.append(f"{tot[DEFAULT] * 1e3:.0f}" if DEFAULT in tot and math.isfinite(tot[DEFAULT]) else "-")
        row.append(f"{best_t / g['gemm_s']:.2f}" if best else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _loader(lines, checks, res, trainer_ips):
    lines += ["", "## Data loader", ""]
    if "skipped" in res:
        lines.append(f"Not measured: {res['skipped']} (hook: `_measure_loader` in cpu_child.py).")
        return
    ips = res["images_per_batch"] / median(res["times"])
    n = max(trainer_ips) if trainer_ips else None
    lines.append(f"`minitorch_alex.data.StoreLoader`, {res['workers']} worker(s), training augmentation, batch "
                 f"{res['images_per_batch']}, from a packed store of synthetic 256x256 images: **{ips:.0f} images/s**"
                 + (f" = {ips / trainer_ips[n]:.1f}x the trainer's {trainer_ips[n]:.1f} img/s at batch {n}." if n else "."))
    if n:
        checks.append((f"data loader (1 worker) >= {TARGETS['loader_over_trainer']}x the trainer's images/s",
                       f"{ips / trainer_ips[n]:.1f}x", _verdict(ips / trainer_ips[n] >= TARGETS["loader_over_trainer"]), "-"))
