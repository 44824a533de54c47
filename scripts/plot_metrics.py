#!/usr/bin/env python3
"""Plots a dropbert run's metrics.jsonl (training loss per step, validation loss at each
evaluation) as an SVG, with nothing but the standard library.

Usage: python3 scripts/plot_metrics.py runs/latest/metrics.jsonl docs/loss.svg
"""
import json
import sys

WIDTH, HEIGHT, MARGIN = 720, 400, 60


def main(metrics_path, svg_path):
    train, validation = [], []
    with open(metrics_path) as f:
        for line in f:
            record = json.loads(line)
            if record["event"] == "train":
                train.append((record["step"], record["loss"]))
            elif record["event"] == "validation":
                validation.append((record["step"], record["loss"]))
    points = train + validation
    max_step = max(step for step, _ in points) or 1
    low = min(loss for _, loss in points)
    high = max(loss for _, loss in points)
    low, high = low - 0.05 * (high - low), high + 0.05 * (high - low)

    def x(step):
        return MARGIN + (WIDTH - 2 * MARGIN) * step / max_step

    def y(loss):
        return HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * (loss - low) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">step</text>',
        f'<text x="15" y="{HEIGHT / 2}" transform="rotate(-90 15 {HEIGHT / 2})" text-anchor="middle">masked-LM loss</text>',
    ]
    for i in range(5):
        loss = low + (high - low) * i / 4
        parts.append(f'<text x="{MARGIN - 5}" y="{y(loss) + 4:.1f}" text-anchor="end">{loss:.2f}</text>')
        step = round(max_step * i / 4)
        parts.append(f'<text x="{x(step):.1f}" y="{HEIGHT - MARGIN + 15}" text-anchor="middle">{step}</text>')
    if train:
        path = " ".join(f"{x(s):.1f},{y(l):.1f}" for s, l in train)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#4477aa" stroke-width="1"/>')
    if validation:
        path = " ".join(f"{x(s):.1f},{y(l):.1f}" for s, l in validation)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#cc3311" stroke-width="2"/>')
        for s, l in validation:
            parts.append(f'<circle cx="{x(s):.1f}" cy="{y(l):.1f}" r="3" fill="#cc3311"/>')
    parts.append(f'<text x="{WIDTH - MARGIN}" y="{MARGIN}" text-anchor="end" fill="#4477aa">training loss</text>')
    parts.append(f'<text x="{WIDTH - MARGIN}" y="{MARGIN + 16}" text-anchor="end" fill="#cc3311">validation loss</text>')
    parts.append("</svg>")
    with open(svg_path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
