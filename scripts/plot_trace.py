#!/usr/bin/python3
"""Renders a window of a fiberjob Chrome Trace Event JSON file as a PNG timeline: one track per
thread (the workers, attached threads and the main-thread track, named as in the trace), job run
segments, coroutine resumptions and idle (parked) time as bars, user zones
(FIBERJOB_TRACE_SCOPE) as labelled bars inside them, frame marks as dashed lines across every
track, steals and fiber suspend/resume as ticks. For docs; Perfetto (ui.perfetto.dev) opens the
same file.

usage: plot_trace.py TRACE.json OUT.png [--start-ms T] [--window-ms W] [--frame N] [--title T]
Without --start-ms the window starts just before the middle frame mark (with --frame, the mark
of frame N) (or at the middle of
the trace, without frame marks) and, without --window-ms, spans one frame."""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"job": "#4c78a8", "coroutine": "#f58518", "idle": "#d0d0d0"}
ZONE_COLORS = ["#54a24b", "#b279a2", "#eeca3b", "#72b7b2", "#ff9da6", "#9d755d", "#e45756"]
MARKS = {"suspend": ("#e45756", 0.15), "resume": ("#54a24b", 0.85), "steal": ("#b279a2", 0.5)}


def window(events, args):
    spans = [e for e in events if e.get("ph") in ("X", "i")]
    if not spans:
        raise SystemExit("no events in " + args.trace)
    last = max(e["ts"] + e.get("dur", 0) for e in spans)
    frames = sorted(e["ts"] for e in events if e.get("cat") == "frame")
    if args.start_ms is not None:
        start = args.start_ms * 1000
    elif frames:
        middle = args.frame if args.frame is not None else len(frames) // 2
        start = frames[middle]
        if args.window_ms is None and middle + 1 < len(frames):
            args.window_ms = (frames[middle + 1] - start) / 1000 * 1.08
        start -= 0.02 * (args.window_ms or 2.0) * 1000
    else:
        start = last / 2
    return spans, start, start + (args.window_ms or 2.0) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("out")
    parser.add_argument("--start-ms", type=float)
    parser.add_argument("--window-ms", type=float)
    parser.add_argument("--frame", type=int, help="show the frame with this index")
    parser.add_argument("--title", default="fiberjob trace: game_frame, den520d.map")
    args = parser.parse_args()
    with open(args.trace) as f:
        events = json.load(f)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    spans, start, end = window(events, args)
    tracks = sorted({e["tid"] for e in spans})
    zone_names = sorted({e["name"] for e in spans if e.get("cat") == "zone"})
    zone_color = {name: ZONE_COLORS[i % len(ZONE_COLORS)] for i, name in enumerate(zone_names)}
    fig, ax = plt.subplots(figsize=(12, 1.2 + 1.0 * len(tracks)))
    scale = (end - start) / 1000
    for e in spans:
        ts, dur = e["ts"], e.get("dur", 0)
        if ts + dur < start or ts > end:
            continue
        y = len(tracks) - 1 - tracks.index(e["tid"])  # first track on top
        x = (ts - start) / 1000
        if e.get("cat") == "frame":
            ax.axvline(x, color="#333333", linestyle="--", linewidth=0.8)
            ax.text(x, len(tracks) + 0.02, " " + e["name"], fontsize=8, va="bottom")
        elif e["ph"] == "X" and e.get("cat") == "zone":
            ax.broken_barh([(x, max(dur / 1000, 0.0005))], (y + 0.3, 0.45),
                           facecolors=zone_color[e["name"]], edgecolors="#222222",
                           linewidth=0.3, zorder=3)  # over the job bar recorded after it
            if dur / 1000 > scale * 0.06:
                ax.text(x + dur / 2000, y + 0.52, e["name"], fontsize=7, ha="center",
                        va="center", clip_on=True, zorder=4)
        elif e["ph"] == "X":
            ax.broken_barh([(x, max(dur / 1000, 0.0005))], (y + 0.1, 0.8),
                           facecolors=COLORS.get(e["name"], "#888888"))
        else:
            color, height = MARKS.get(e["name"], ("#000000", 0.5))
            ax.plot([x] * 2, [y + 0.1, y + 0.1 + 0.8 * height], color=color, linewidth=0.6)
    ax.set_yticks([len(tracks) - 1 - i + 0.5 for i in range(len(tracks))])
    ax.set_yticklabels([names.get(t, "tid {}".format(t)) for t in tracks], fontsize=8)
    ax.set_ylim(0, len(tracks) + 0.35)
    ax.set_xlim(0, scale)
    ax.set_xlabel(f"ms (from {start / 1000:.3f} ms into the run)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    handles += [plt.Rectangle((0, 0), 1, 1, color=zone_color[n]) for n in zone_names]
    handles += [plt.Line2D([0], [0], color=c) for c, _ in MARKS.values()]
    labels = list(COLORS) + ["zone: " + n for n in zone_names] + list(MARKS)
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=6,
              fontsize=8)
    ax.set_title(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
