"""Two `DROPBERT_PROFILE=1` reports of one step each, op by op: for each op of the second, its
time against what the same number of calls took in the first (PreLn's per-call time, say, for
a Both step's op). Ops only the second has count whole. Prints the 40 largest excesses.

Usage: python3 scripts/compare_profiles.py FIRST_REPORT SECOND_REPORT
"""
import re
import sys

UNITS = {"ms": 1.0, "µs": 1e-3, "s": 1e3, "ns": 1e-6}


def op_times(path):
    """Per op line of the report's table: (milliseconds, calls)."""
    times = {}
    for line in open(path, encoding="utf-8"):
        if "idle after:" in line:
            break
        match = re.match(r"\s*([\d.]+)(ms|µs|s|ns)\s+x(\d+)\s+(.*?)(\s+\(host.*)?$", line)
        if match:
            name = match.group(4)[:110]
            times[name] = (float(match.group(1)) * UNITS[match.group(2)], int(match.group(3)))
    return times


def main(first_path, second_path):
    first, second = op_times(first_path), op_times(second_path)
    rows = []
    for name, (time, calls) in second.items():
        before, before_calls = first.get(name, (0.0, 0))
        expected = before / before_calls * calls if before_calls else 0.0
        rows.append((time - expected, name, time, calls, before, before_calls))
    rows.sort(reverse=True)
    print("excess ms | second: ms x calls | first: ms x calls | op")
    for excess, name, time, calls, before, before_calls in rows[:40]:
        print(f"{excess:8.3f} | {time:8.3f} x{calls:<4} | {before:8.3f} x{before_calls:<4} | {name}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
