#!/usr/bin/python3
"""Renders a window of a fiberjob Chrome Trace Event JSON file as a PNG timeline: one track per
worker, job run segments, coroutine resumptions and idle (parked) time as bars, steals and
fiber suspend/resume as ticks. For docs; Perfetto (ui.perfetto.dev) opens the same file.

usage: plot_trace.py TRACE.json OUT.png [--start-ms T] [--window-ms W]
Without --start-ms the window starts at the middle of the trace."""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"job": "#4c78a8", "coroutine": "#f58518", "idle": "#d0d0d0"}
MARKS = {"suspend": ("#e45756", 0.15), "resume": ("#54a24b", 0.85), "steal": ("#b279a2", 0.5)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("out")
    parser.add_argument("--start-ms", type=float)
    parser.add_argument("--window-ms", type=float, default=2.0)
    args = parser.parse_args()
    with open(args.trace) as f:
        events = json.load(f)["traceEvents"]
    spans = [e for e in events if e.get("ph") in ("X", "i")]
    if not spans:
        raise SystemExit("no events in " + args.trace)
    last = max(e["ts"] + e.get("dur", 0) for e in spans)
    start = args.start_ms * 1000 if args.start_ms is not None else last / 2
    end = start + args.window_ms * 1000
    workers = sorted({e["tid"] for e in spans})
    fig, ax = plt.subplots(figsize=(12, 1.0 + 0.9 * len(workers)))
    for e in spans:
        ts, dur = e["ts"], e.get("dur", 0)
        if ts + dur < start or ts > end:
            continue
        y = workers.index(e["tid"])
        if e["ph"] == "X":
            ax.broken_barh([((ts - start) / 1000, max(dur / 1000, 0.0005))], (y + 0.1, 0.8),
                           facecolors=COLORS.get(e["name"], "#888888"))
        else:
            color, height = MARKS.get(e["name"], ("#000000", 0.5))
            ax.plot([(ts - start) / 1000] * 2, [y + 0.1, y + 0.1 + 0.8 * height], color=color,
                    linewidth=0.6)
    ax.set_yticks([w + 0.5 for w in range(len(workers))])
    ax.set_yticklabels([f"worker {w}" for w in workers])
    ax.set_xlim(0, (end - start) / 1000)
    ax.set_xlabel(f"ms (from {start / 1000:.3f} ms into the run)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    handles += [plt.Line2D([0], [0], color=c) for c, _ in MARKS.values()]
    ax.legend(handles, list(COLORS) + list(MARKS), loc="upper right", ncol=6, fontsize=8)
    ax.set_title("fiberjob trace: game_frame, den520d.map")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
