#!/usr/bin/env python3
"""scripts/check_trace.py rejects times outside a trace's own clock range: a wrapped negative
start (about 2^64 ns), a slice that ends after the trace was copied (otherData.copied_at_us),
a negative start or duration, NaN (not JSON); and accepts the same trace with sane times.

  tests/trace/check_trace_rejects.py WORK_DIR

Exit status 0 = every case was judged as expected."""

import copy
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
import check_trace  # noqa: E402

BASE = {
    "displayTimeUnit": "ns",
    "traceEvents": [
        {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "fiberjob"}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 2,
         "args": {"name": "attached thread (slot 2)"}},
        {"name": "job", "cat": "job", "ph": "X", "ts": 100.0, "dur": 50.0, "pid": 1, "tid": 2,
         "args": {"fiber": 0}},
        {"name": "resume", "cat": "resume", "ph": "i", "s": "t", "ts": 180.0, "pid": 1,
         "tid": 2, "args": {"fiber": 0}},
    ],
    "otherData": {"dropped_events": 0, "overwritten_events": 0, "first_frame": 0,
                  "copied_at_us": 200.0, "complete": True},
}


def variant(change):
    trace = copy.deepcopy(BASE)
    change(trace)
    return trace


def set_slice(**fields):
    return lambda trace: trace["traceEvents"][2].update(fields)


def drop_copied_at(trace):
    del trace["otherData"]["copied_at_us"]


CASES = [
    ("sane times", BASE, True),
    ("a wrapped negative start (2^64 ns)",
     variant(set_slice(ts=1.8446684985062108e+16, dur=59088757953.54)), False),
    ("a slice ending after copied_at_us", variant(set_slice(ts=150.0, dur=60.0)), False),
    ("an instant after copied_at_us",
     variant(lambda t: t["traceEvents"][3].update(ts=250.0)), False),
    ("a negative duration", variant(set_slice(dur=-5.0)), False),
    ("a negative start", variant(set_slice(ts=-1.0)), False),
    ("no copied_at_us, sane times", variant(drop_copied_at), True),
    ("no copied_at_us, a wrapped start",
     variant(lambda t: (drop_copied_at(t), set_slice(ts=1.8446684985062108e+16)(t))), False),
    ("a NaN start", variant(set_slice(ts=float("nan"))), False),
    ("a NaN copied_at_us",
     variant(lambda t: t["otherData"].update(copied_at_us=float("nan"))), False),
]


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    os.makedirs(argv[1], exist_ok=True)
    failures = 0
    for index, (what, trace, valid) in enumerate(CASES):
        path = os.path.join(argv[1], "case{}.json".format(index))
        with open(path, "w") as file:
            json.dump(trace, file)
        errors, _ = check_trace.check(path)
        judged_valid = not errors
        ok = judged_valid == valid
        failures += not ok
        print("check_trace_rejects: {}: {} ({}){}".format(
            what, "accepted" if judged_valid else "rejected", "; ".join(errors[:2]),
            "" if ok else " -- WRONG"))
    print("check_trace_rejects: " + ("passed" if failures == 0 else "{} wrong".format(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
