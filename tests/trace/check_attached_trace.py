#!/usr/bin/env python3
"""Runs tests/trace/attached_trace.cpp's program and checks its trace: valid for
scripts/check_trace.py (every time inside the trace's clock range, slices nested), and on the
attached thread's slot every slice inside a period in which a thread was attached (between
frame marks 2k and 2k+1), with two segments of the job "inline waiter" per frame (it suspends
the thread's own stack once), the arrow of the child each of those spawns starting on that
track, and a resume of that stack per suspension.

  tests/trace/check_attached_trace.py PROGRAM TRACE.json

Exit status 0 = the trace passed."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
import check_trace  # noqa: E402

FRAMES = 8
SLACK_US = 0.002  # times are written with nanosecond digits


def attach_periods(events):
    """[(start, end)] of the attach periods, from the frame marks "frame 2k" and "frame 2k+1"."""
    marks = {}
    for event in events:
        if event.get("cat") == "frame":
            marks[int(event["name"].split()[1])] = event["ts"]
    return [(marks[k], marks[k + 1]) for k in range(0, len(marks) - 1, 2)]


def check_slot(events, errors):
    slots = {e["tid"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e["args"]["name"].startswith("attached thread")}
    if len(slots) != 1:
        errors.append("expected one attached thread's track, found {}".format(len(slots)))
        return
    periods = attach_periods(events)
    if len(periods) != 5:
        errors.append("expected 5 attach periods (10 frame marks), found {}".format(len(periods)))
    slices = [e for e in events if e.get("tid") in slots and e.get("ph") == "X"]
    for e in slices:
        end = e["ts"] + e["dur"]
        if not any(start - SLACK_US <= e["ts"] and end <= stop + SLACK_US
                   for start, stop in periods):
            errors.append("slice {!r} ({} us, {} us long) on the attached thread's track is "
                          "outside every attach period {}".format(e["name"], e["ts"], e["dur"],
                                                                  periods))
    waiter = sum(1 for e in slices if e["name"] == "inline waiter")
    if waiter != 2 * FRAMES:
        errors.append("{} segments of 'inline waiter', expected {} (2 per frame)".format(
            waiter, 2 * FRAMES))
    resumes = sum(1 for e in events if e.get("tid") in slots and e.get("name") == "resume")
    if resumes < 2 * FRAMES:
        errors.append("{} resumes on the attached thread's track, expected at least {}".format(
            resumes, 2 * FRAMES))
    # Each frame's "inline waiter", run on the thread's own stack, spawns a child: its arrow
    # starts there.
    spawns = sum(1 for e in events if e.get("tid") in slots and e.get("ph") == "s"
                 and e.get("name") == "spawn")
    if spawns != FRAMES:
        errors.append("{} spawn arrows start on the attached thread's track, expected {} (1 "
                      "per frame)".format(spawns, FRAMES))
    jobs = sum(1 for e in slices if e["name"] == "job")
    if jobs != 0:
        errors.append("{} unnamed 'job' slices on the attached thread's track: its own code "
                      "is no job".format(jobs))


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    program, path = argv[1], argv[2]
    if subprocess.run([program, path]).returncode != 0:
        print("check_attached_trace: the program failed")
        return 1
    errors, summary = check_trace.check(path)
    if summary is not None:  # the file was read
        with open(path) as file:
            check_slot(json.load(file)["traceEvents"], errors)
    for error in errors[:50]:
        print("check_attached_trace: " + error)
    print("check_attached_trace: {}: {}".format(path, summary))
    print("check_attached_trace: " + ("passed" if not errors else "{} errors".format(len(errors))))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
