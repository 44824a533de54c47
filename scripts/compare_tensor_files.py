#!/usr/bin/env python3
"""Compares two safetensors files tensor by tensor (e.g. a GPU run against a CPU run):
max |a - b| / max(max |b|, floor) per tensor, where floor is 1e-3 of the largest value of all
float tensors of the reference (as tests/integration/grads_parity.rs measures); integer tensors must be equal.
Usage: compare_tensor_files.py ACTUAL REFERENCE [--tolerance 1e-4]. Prints one line per file
and exits 1 when a tensor is off or missing. Needs only the standard library."""
import argparse
import json
import struct
import sys
from array import array

FORMATS = {"F32": "f", "I64": "q", "F64": "d", "I32": "i"}


def read(path):
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        values = array(FORMATS[info["dtype"]])
        values.frombytes(data[start:end])
        tensors[name] = (info["dtype"], info["shape"], values)
    return tensors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("actual")
    parser.add_argument("reference")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    actual, reference = read(args.actual), read(args.reference)
    floor = 1e-3 * max(
        (abs(v) for dtype, _, values in reference.values() if dtype.startswith("F") for v in values),
        default=0.0,
    )
    worst, worst_name, failures = 0.0, "", []
    for name, (dtype, shape, expected) in sorted(reference.items()):
        if name not in actual:
            failures.append(f"{name} missing")
            continue
        got_dtype, got_shape, got = actual[name]
        if got_shape != shape or len(got) != len(expected):
            failures.append(f"{name} shape {got_shape} vs {shape}")
            continue
        if not dtype.startswith("F"):
            if list(got) != list(expected):
                failures.append(f"{name} differs")
            continue
        if any(v != v for v in got):
            failures.append(f"{name} has NaN")
            continue
        scale = max(max((abs(v) for v in expected), default=0.0), floor)
        diff = max((abs(a - b) for a, b in zip(got, expected)), default=0.0)
        error = diff / scale if scale > 0 else diff
        if error > worst:
            worst, worst_name = error, name
        if error > args.tolerance:
            failures.append(f"{name} relative error {error:.3e}")
    status = "ok" if not failures else "FAIL"
    print(f"{status} {args.actual}: {len(reference)} tensors, worst {worst:.3e} ({worst_name})"
          + "".join(f"\n    {f}" for f in failures[:10]))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
