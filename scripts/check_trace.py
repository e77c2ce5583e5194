#!/usr/bin/env python3
"""Validates a Chrome Trace Event JSON file (JSON Object Format) as fiberjob writes it, against
the Trace Event Format document (docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU):
the top-level object and its traceEvents array; per event the fields its phase requires (name,
ph, pid, tid, ts in microseconds, dur for complete events, scope for instant events, args.name
for metadata); complete events on one thread properly nested (Perfetto draws them as a stack);
every thread that has events named by thread_name metadata; every time inside the trace's own
clock range: ts >= 0 and ts + dur no later than otherData.copied_at_us (when write_trace had
copied the buffers; without it, no later than 10^15 us, some 31 years: a larger time is a
wrapped negative one); and the flow arrows: every flow
start ("s") has exactly one finish ("f") with its category, name and id, no id starts two
flows, a finish is not before its start, and both ends fall inside a complete event of their
thread (the slice each binds to: "s" and an "f" with "bp":"e" bind to the enclosing slice).

  scripts/check_trace.py TRACE.json                 # check a file
  scripts/check_trace.py --run TRACE.json -- CMD..  # run CMD (which writes TRACE.json), then check

Exit status 0 = valid. Prints a summary (events per phase, dropped events) either way."""

import bisect
import json
import subprocess
import sys
from collections import Counter, defaultdict

PHASES = {"X", "B", "E", "i", "I", "M", "C", "s", "t", "f", "b", "e", "n"}
METADATA = {"process_name", "process_labels", "process_sort_index", "thread_name",
            "thread_sort_index"}


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def reject_constant(name):
    raise ValueError("{} is not a JSON number".format(name))


# The latest plausible time (us) in a file without otherData.copied_at_us.
ABSURD_US = 1e15
# Rounding slack (us): times are written with nanosecond digits.
SLACK_US = 0.002


def check_clock_range(events, clock_end_us, errors):
    """Every event lies in [0, clock_end_us]: a later one (a wrapped negative start, or a slice
    that was never closed) would stretch the timeline past the time the trace was taken."""
    bad = 0
    for index, event in enumerate(events):
        if not isinstance(event, dict) or event.get("ph") == "M" or not number(event.get("ts")):
            continue
        end = event["ts"] + (event["dur"] if number(event.get("dur")) else 0)
        if end > clock_end_us + SLACK_US:
            bad += 1
            if bad <= 5:
                errors.append("event {} ({!r}): ends at {} us, after the trace's clock range "
                              "(0 .. {} us)".format(index, event.get("name"), end, clock_end_us))
    if bad > 5:
        errors.append("... {} events out of the clock range in all".format(bad))


def check_event(index, event, errors):
    where = "event {}".format(index)
    if not isinstance(event, dict):
        errors.append("{}: not an object".format(where))
        return
    ph = event.get("ph")
    if ph not in PHASES:
        errors.append("{}: unknown phase {!r}".format(where, ph))
        return
    if not isinstance(event.get("name"), str):
        errors.append("{}: name must be a string".format(where))
    if not isinstance(event.get("pid"), int):
        errors.append("{}: pid must be an integer".format(where))
    if ph == "M":
        if event.get("name") not in METADATA:
            errors.append("{}: unknown metadata {!r}".format(where, event.get("name")))
        if event.get("name") in ("process_name", "thread_name") and not isinstance(
                event.get("args", {}).get("name"), str):
            errors.append("{}: {} needs args.name".format(where, event.get("name")))
        if event.get("name") == "thread_name" and not isinstance(event.get("tid"), int):
            errors.append("{}: thread_name needs an integer tid".format(where))
        return
    if not isinstance(event.get("tid"), int):
        errors.append("{}: tid must be an integer".format(where))
    if not number(event.get("ts")) or event["ts"] < 0:
        errors.append("{}: ts must be a number >= 0 (microseconds)".format(where))
    if ph == "X" and (not number(event.get("dur")) or event["dur"] < 0):
        errors.append("{}: a complete event needs dur >= 0".format(where))
    if ph in ("i", "I") and event.get("s", "t") not in ("g", "p", "t"):
        errors.append("{}: instant scope must be g, p or t".format(where))
    if ph in ("s", "t", "f", "b", "e", "n") and "id" not in event:
        errors.append("{}: a flow or async event needs an id".format(where))
    if "args" in event and not isinstance(event["args"], dict):
        errors.append("{}: args must be an object".format(where))


def check_nesting(events, errors):
    """Complete events of one thread must nest: each one ends before the enclosing one does."""
    per_thread = defaultdict(list)
    for event in events:
        if event.get("ph") == "X" and number(event.get("ts")) and number(event.get("dur")):
            per_thread[(event["pid"], event.get("tid"))].append(
                (event["ts"], -event["dur"], event["name"]))
    bad = 0
    for thread, spans in per_thread.items():
        spans.sort()
        stack = []
        for ts, neg_dur, name in spans:
            end = ts - neg_dur
            while stack and stack[-1][0] <= ts + 1e-9:
                stack.pop()
            if stack and end > stack[-1][0] + 1e-3:  # 1 ns of rounding slack
                bad += 1
                if bad <= 5:
                    errors.append("thread {}: {!r} at {} us overlaps the end of {!r}".format(
                        thread, name, ts, stack[-1][1]))
            stack.append((end, name))
    if bad > 5:
        errors.append("... {} overlapping complete events in all".format(bad))


class Spans:
    """The complete events of one thread, for asking whether one contains a time."""

    def __init__(self, spans):
        spans.sort()
        self.starts = [start for start, _ in spans]
        self.max_end = []  # the latest end among the spans that start at or before each one
        for _, end in spans:
            self.max_end.append(max(end, self.max_end[-1]) if self.max_end else end)

    def contain(self, ts):
        i = bisect.bisect_right(self.starts, ts + 1e-9) - 1
        return i >= 0 and self.max_end[i] + 1e-9 >= ts


def check_flows(events, errors):
    """Flow v1 events: starts and finishes pair up one to one, each bound to a slice."""
    spans = defaultdict(list)
    for event in events:
        if event.get("ph") == "X" and number(event.get("ts")) and number(event.get("dur")):
            spans[(event["pid"], event.get("tid"))].append(
                (event["ts"], event["ts"] + event["dur"]))
    spans = defaultdict(lambda: Spans([]), {thread: Spans(s) for thread, s in spans.items()})
    starts, finishes = {}, {}
    bad = []
    for event in events:
        ph = event.get("ph")
        if ph not in ("s", "f") or not number(event.get("ts")):
            continue
        key = (event.get("cat"), event.get("name"), event.get("id"))
        table = starts if ph == "s" else finishes
        if key in table:
            bad.append("flow {} has two {!r} events".format(key, ph))
        table[key] = event
        if ph == "f" and event.get("bp") != "e":
            bad.append("flow {}: the finish does not bind to its enclosing slice "
                       "(\"bp\":\"e\")".format(key))
        if not spans[(event.get("pid"), event.get("tid"))].contain(event["ts"]):
            bad.append("flow {}: the {!r} at {} us is in no complete event of thread {}".format(
                key, ph, event["ts"], event.get("tid")))
    for key, start in starts.items():
        finish = finishes.get(key)
        if finish is None:
            bad.append("flow {} starts but never finishes".format(key))
        elif finish["ts"] + 1e-9 < start["ts"]:
            bad.append("flow {} finishes before it starts".format(key))
    for key in finishes.keys() - starts.keys():
        bad.append("flow {} finishes but never starts".format(key))
    errors.extend(bad[:5])
    if len(bad) > 5:
        errors.append("... {} flow errors in all".format(len(bad)))
    return len(starts)


def check(path):
    errors = []
    try:
        with open(path) as file:
            # NaN and Infinity are not JSON (RFC 8259), though Python's parser takes them.
            trace = json.load(file, parse_constant=reject_constant)
    except (OSError, ValueError) as error:
        return ["cannot read {}: {}".format(path, error)], None
    if not isinstance(trace, dict) or not isinstance(trace.get("traceEvents"), list):
        return ["the top level must be an object with a traceEvents array"], None
    if trace.get("displayTimeUnit", "ms") not in ("ms", "ns"):
        errors.append("displayTimeUnit must be ms or ns")
    events = trace["traceEvents"]
    for index, event in enumerate(events):
        check_event(index, event, errors)
    other = trace.get("otherData", {})
    if not isinstance(other, dict):
        errors.append("otherData must be an object")
        other = {}
    clock_end = other.get("copied_at_us", ABSURD_US)
    if not number(clock_end) or clock_end < 0:
        errors.append("otherData.copied_at_us must be a number >= 0 (microseconds)")
        clock_end = ABSURD_US
    check_clock_range(events, clock_end, errors)
    check_nesting(events, errors)
    flows = check_flows([e for e in events if isinstance(e, dict)], errors)
    named = {(e.get("pid"), e.get("tid")) for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    used = {(e.get("pid"), e.get("tid")) for e in events if e.get("ph") not in ("M", None)}
    for thread in sorted(used - named, key=str):
        errors.append("thread {} has events but no thread_name".format(thread))
    phases = Counter(e.get("ph") for e in events if isinstance(e, dict))
    summary = "{} events ({}), {} flow arrows, {} dropped, {} overwritten".format(
        len(events), ", ".join("{} {}".format(n, ph) for ph, n in sorted(phases.items())), flows,
        other.get("dropped_events", "?"), other.get("overwritten_events", "?"))
    return errors, summary


def main(argv):
    if len(argv) >= 4 and argv[1] == "--run" and argv[3] == "--":
        path = argv[2]
        result = subprocess.run(argv[4:])
        if result.returncode != 0:
            print("check_trace: the command failed (exit {})".format(result.returncode))
            return 1
    elif len(argv) == 2:
        path = argv[1]
    else:
        print(__doc__)
        return 2
    errors, summary = check(path)
    for error in errors[:50]:
        print("check_trace: " + error)
    if summary:
        print("check_trace: {}: {}".format(path, summary))
    print("check_trace: " + ("valid" if not errors else "{} errors".format(len(errors))))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
