#!/usr/bin/env python3
"""Compare two tensor files that cannot be on the same machine (BERT-base's gradients are 438 MB;
a GPU run carries 64 MiB), through small fingerprints of each tensor.

  tensor_fingerprints.py make FILE.safetensors OUT.json   # on each machine
  tensor_fingerprints.py compare ACTUAL.json REFERENCE.json [--tolerance 1e-4]

A fingerprint is the tensor's L2 norm and its dot products with PROJECTIONS vectors of random
signs, the same on every machine (seeded by the tensor's name). The difference d of two tensors
shows in each projection with a standard deviation of |d|, so the root mean square of the
projections' differences, over the reference's norm, estimates the relative error |d| / |ref|
that compare_tensor_files.py computes exactly. As there, a tensor far smaller than the others (a
key bias's gradient, zero but for rounding) is measured against a floor: 1e-3 of the largest
root mean square of any tensor, over its size. Exit 1 when an estimate exceeds the tolerance.
Needs numpy.
"""
import json
import os
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_tensor_files import read  # noqa: E402

PROJECTIONS = 8


def read_float64(path):
    """Each tensor of a safetensors file, flat, in float64."""
    return {name: np.frombuffer(values, dtype=values.typecode).astype(np.float64)
            for name, (_, _, values) in read(path).items()}


def signs(name, size):
    rng = np.random.RandomState(zlib.crc32(name.encode()))
    return rng.randint(0, 2, size=(PROJECTIONS, size)).astype(np.float64) * 2.0 - 1.0


def make(path, out):
    fingerprints = {}
    for name, values in read_float64(path).items():
        projections = [float(np.dot(row, values)) for row in signs(name, values.size)]
        fingerprints[name] = {
            "norm": float(np.linalg.norm(values)),
            "size": int(values.size),
            "projections": projections,
        }
    json.dump(fingerprints, open(out, "w"))


def compare(actual_path, reference_path, tolerance):
    actual, reference = json.load(open(actual_path)), json.load(open(reference_path))
    missing = sorted(set(reference) ^ set(actual))
    largest_rms = max(r["norm"] / np.sqrt(max(r["size"], 1)) for r in reference.values())
    worst, worst_name, failures = 0.0, "", 0
    for name in sorted(set(reference) & set(actual)):
        a, r = actual[name], reference[name]
        differences = np.array(a["projections"]) - np.array(r["projections"])
        floor = 1e-3 * largest_rms * np.sqrt(r["size"])
        estimate = float(np.sqrt(np.mean(differences**2))) / max(r["norm"], floor, 1e-30)
        if estimate > worst:
            worst, worst_name = estimate, name
        if estimate > tolerance:
            failures += 1
            print(f"DIFFERS {name}: estimated relative error {estimate:.3e}")
    status = "ok" if not failures and not missing else "FAIL"
    print(f"{status} {actual_path}: {len(reference)} tensors, estimated worst {worst:.3e} ({worst_name})"
          + (f"; only in one file: {missing}" if missing else ""))
    return failures == 0 and not missing


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "compare":
        tolerance = float(sys.argv[sys.argv.index("--tolerance") + 1]) if "--tolerance" in sys.argv else 1e-4
        sys.exit(0 if compare(sys.argv[2], sys.argv[3], tolerance) else 1)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
