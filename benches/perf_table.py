#!/usr/bin/env python3
"""The GPU benchmark table of docs/perf.md from benches/cuda_perf.sh's outputs:
`perf_table.py bench.jsonl torch.jsonl` prints markdown. Each dropbert row gives its throughput
against PyTorch on the same shape, the host time of its execution (with steps queued ahead, since
run 76, up to the step time where the host waits in it for room in the device's queue; the device
waits for the host only where it exceeds the step time), and for a dropping method its speedup
over its own baseline
(same layout: token dropping against the Post-LN baseline, layer dropping and both against the
Pre-LN one), from mean step times, beside the matmul FLOP ratio of the same steps' mean FLOPs."""
import json
import re
import sys

BASELINE_OF = {"TokenDrop": "Base", "LayerDrop": "PreLn", "Both": "PreLn"}


def read(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def gib(value):
    return "" if value is None else f"{value / 2**30:.1f}"


def main():
    ours, torch = read(sys.argv[1]), read(sys.argv[2])
    measured = {(r["configuration"], r["matmul"]): r for r in ours if "failed" not in r}
    failed = [r for r in ours if "failed" in r]
    reference = {(r["batch"], r["seq"], r["mode"]): r for r in torch if "failed" not in r}
    print("| configuration | matmul | median step | host time in execution | tokens/s | / PyTorch same precision | "
          "/ PyTorch bf16 | / torch.compile bf16 | speedup over baseline (mean step) | FLOP ratio | "
          "speedup / FLOP ratio | peak GPU memory (GiB) | activations (GiB) | activations / baseline's |")
    print("|" + "---|" * 14)
    for (name, matmul), row in measured.items():
        method, shape = re.match(r"([A-Za-z]+?)(\d+x\d+)$", name).groups()
        shape_key = (row["batch"], row["seq"])
        tokens = row["tokens_per_second"]

        def against(mode):
            ref = reference.get(shape_key + (mode,))
            return f"{tokens / ref['tokens_per_second']:.3f}" if ref else ""

        activations = None
        if row.get("peak_gpu_memory_bytes") is not None:
            activations = row["peak_gpu_memory_bytes"] - row["gpu_resident_bytes"]
        speedup = flop_ratio = efficiency = activation_ratio = ""
        base = measured.get((BASELINE_OF.get(method, "") + shape, matmul))
        if base:
            # Mean against mean, as the FLOP ratio is one of mean FLOPs over the same steps
            # (layer dropping's work varies from step to step); older runs recorded medians only.
            key = "mean_step_seconds" if "mean_step_seconds" in row and "mean_step_seconds" in base else "median_step_seconds"
            s = base[key] / row[key]
            f = base["flops_per_step"] / row["flops_per_step"]
            speedup, flop_ratio, efficiency = f"{s:.3f}", f"{f:.3f}", f"{s / f:.0%}"
            if activations is not None and base.get("peak_gpu_memory_bytes") is not None:
                base_activations = base["peak_gpu_memory_bytes"] - base["gpu_resident_bytes"]
                activation_ratio = f"{activations / base_activations:.3f}"
        host = row.get("median_execute_host_seconds")
        host = "" if host is None else f"{host * 1e3:.1f} ms"
        print(f"| {name} | {matmul} | {row['median_step_seconds'] * 1e3:.1f} ms | {host} | {tokens:,.0f} | "
              f"{against(matmul)} | {against('bf16')} | {against('bf16-compile')} | {speedup} | "
              f"{flop_ratio} | {efficiency} | {gib(row.get('peak_gpu_memory_bytes'))} | "
              f"{gib(activations)} | {activation_ratio} |")
    print()
    print("| PyTorch (transformers BertForMaskedLM) | batch x seq | median step | tokens/s | peak GPU memory (GiB) |")
    print("|---|---|---|---|---|")
    for r in torch:
        if "failed" in r:
            print(f"| {r['mode']} | {r['batch']} x {r['seq']} | failed: {r['failed'][:60]} | | |")
        else:
            print(f"| {r['mode']} | {r['batch']} x {r['seq']} | {r['median_step_seconds'] * 1e3:.1f} ms | "
                  f"{r['tokens_per_second']:,.0f} | {gib(r['peak_gpu_memory_bytes'])} |")
    for r in failed:
        print(f"\ndropbert {r['configuration_arg']} ({r['matmul']}) failed: exit {r['failed']} (log.txt)")


if __name__ == "__main__":
    main()
