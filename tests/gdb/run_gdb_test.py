#!/usr/bin/env python3
"""The debugger test: runs tests/gdb/suspended_jobs.cpp under `gdb -batch` with
scripts/gdb/fiberjob.py, stops it once its jobs are suspended, writes a core file, then inspects
the core in a second gdb. Both sessions must show the suspended plain jobs' functions in
`fiberjob bt all` (also the one on a fiber of an extra stack class), what they wait on in
`fiberjob fibers` (the call they wait in: the innermost public one, never a private member;
counters with their pending counts without the count word's flag bits), the attached threads'
own stacks that wait (one suspended, one parked for lack of fibers) with what they wait on,
and the coroutine job's await chain in `fiberjob coroutines`, with the lines of its co_awaits. The core session first selects a C frame (select_c_frame.py), where gdb parses C
unless told otherwise, as in any thread of a hung process. A third session without a program checks that the commands say what is
missing instead of raising Python errors. Exit status 0 = passed; the gdb output is printed either
way."""

import argparse
import os
import re
import shutil
import subprocess
import sys

COMMANDS = ["fiberjob fibers", "fiberjob coroutines", "fiberjob bt all"]


def run_gdb(gdb, args, work_dir, name):
    result = subprocess.run([gdb, "-batch", "-nx"] + args, cwd=work_dir, capture_output=True,
                            text=True, timeout=240)
    output = result.stdout + result.stderr
    print("===== gdb session: {} (exit {})\n{}".format(name, result.returncode, output))
    return output


def await_site(source, coroutine):
    """The line of `source` marked "// await site: COROUTINE" (its co_await of the next task)."""
    with open(source) as lines:
        for number, line in enumerate(lines, start=1):
            if line.rstrip().endswith("// await site: " + coroutine):
                return number
    raise RuntimeError("no await site marked for {} in {}".format(coroutine, source))


def coroutine_lines(source, coroutine):
    """The lines of `source` from "// coroutine begins: COROUTINE" to "// coroutine ends: ..."."""
    with open(source) as lines:
        marked = {}
        for number, line in enumerate(lines, start=1):
            for edge in ("begins", "ends"):
                if line.rstrip().endswith("// coroutine {}: {}".format(edge, coroutine)):
                    marked[edge] = number
    if len(marked) != 2:
        raise RuntimeError("no coroutine marked {} in {}".format(coroutine, source))
    return range(marked["begins"], marked["ends"] + 1)


def defined_within(output, pattern, lines):
    """True when `pattern` (with a group for the line) matches and that line is in `lines`."""
    found = re.search(pattern, output)
    return found is not None and int(found.group(1)) in lines


def check(output, name, source):
    """Returns the list of failed expectations for one session's output."""
    region_line = await_site(source, "load_region")
    level_line = await_site(source, "coroutine_job_loading_level")
    lambda_line = await_site(source, "lambda")
    expectations = [
        # A named job shows its JobOptions::name; a deep one both ends of its chain of calls.
        (r'suspended\s+last on worker \d+, job "asset streamer"\n\s+job:\s+lambda > '
         r"plain_job_waiting_on_counter > wait_for_assets", "the named job's name"),
        (r"job:\s+lambda > plain_job_deep_in_recursion > [^\n]*\.\.\. \d+ more \.\.\. > "
         r"[^\n]*recurse_then_wait\n\s+waits: counter",
         "the deep job's entry function and its innermost call"),
        # Coroutine jobs: their names and what they wait on.
        (r'coroutine job \d+ "frame follower" \(root promise 0x[0-9a-f]+\), waits on Event '
         r"0x[0-9a-f]+; innermost task first:\n\s+#0 frame 0x[0-9a-f]+ wait_for_next_frame\n"
         r"\s+defined at \S+suspended_jobs.cpp:\d+\n\s+#1 frame 0x[0-9a-f]+ lambda\n"
         r"\s+awaits #0 at \S+suspended_jobs.cpp:{}\n".format(lambda_line),
         "the named coroutine job, its Event and its chain"),
        (r"waits on counter 0x[0-9a-f]+ \(pending 1\); innermost task first:\n"
         r"\s+#0 frame 0x[0-9a-f]+ stream_chunk\n", "what the three-deep coroutine waits on"),
        # fiberjob fibers: both plain jobs, what they wait on and their call chains.
        (r"job:\s+lambda > plain_job_waiting_on_counter > wait_for_assets",
         "the counter waiter's job chain"),
        (r"waits: counter 0x[0-9a-f]+ \(pending 1\), in fiberjob::this_fiber::wait",
         "the counter it waits on"),
        (r"job:\s+lambda > plain_job_waiting_on_event\n\s+waits: in fiberjob::Event::wait",
         "the event waiter"),
        # this_fiber::wait(event) calls Event::wait: the innermost public call is named.
        (r"job:\s+lambda > plain_job_waiting_in_this_fiber_wait\n"
         r"\s+waits: in fiberjob::Event::wait\n", "the this_fiber::wait(event) waiter"),
        # A value wait sets flag bits in its counter's count word: the pending count is
        # still 2. The value wait names its counter, the whole line unshortened.
        (r"job:\s+lambda > plain_job_waiting_for_a_value\n\s+waits: a Counter's value "
         r"0x[0-9a-f]+ \(pending 2\), in fiberjob::this_fiber::wait\n", "the value waiter"),
        (r"job:\s+lambda > plain_job_waiting_on_flagged_counter\n\s+waits: counter "
         r"0x[0-9a-f]+ \(pending 2\), in fiberjob::this_fiber::wait\n",
         "the pending count of a counter with a value waiter, without its flag bits"),
        # Mutex::lock ends in a private member: the public call is named.
        (r"job:\s+lambda > plain_job_waiting_on_mutex\n\s+waits: in fiberjob::Mutex::lock\n",
         "the mutex waiter, in the public Mutex::lock"),
        # A job with a stop token: its counter, as write_diagnostics names it.
        (r"plain_job_with_stop_token\n\s+waits: counter 0x[0-9a-f]+ \(pending 1\), in "
         r"fiberjob::this_fiber::wait\n", "the counter of a job with a stop token"),
        # Attached threads' own stacks: one suspended (the thread runs other jobs meanwhile),
        # one parked (no fiber was free), each with what it waits on.
        (r"attached thread of worker 2, on its own stack \(suspended: the thread runs other "
         r"jobs meanwhile\):\n\s+job:\s+lambda > attached_job_waiting_on_counter\n"
         r"\s+waits: counter 0x[0-9a-f]+ \(pending 1\), in fiberjob::this_fiber::wait\n",
         "the attached thread's own stack suspended in a wait"),
        (r"job system 1 at [^\n]*: 2 workers[^\n]*\n(?:  [^\n]*\n)*?"
         r"  attached thread of worker 1, on its own stack:\n"
         r"\s+waits: Event 0x[0-9a-f]+ \(parked on the thread's own stack: no fiber was free",
         "the attached thread's own stack parked in a wait"),
        # fiberjob coroutines: innermost task first, each outer one at its co_await's line.
        (r"#0 frame 0x[0-9a-f]+ stream_chunk\n\s+defined at \S+suspended_jobs.cpp:\d+\n"
         r"\s+#1 frame 0x[0-9a-f]+ load_region\n"
         r"\s+awaits #0 at \S+suspended_jobs.cpp:{}\n"
         r"\s+#2 frame 0x[0-9a-f]+ coroutine_job_loading_level\n"
         r"\s+awaits #1 at \S+suspended_jobs.cpp:{}\n".format(region_line, level_line),
         "the coroutine job's await chain with its co_await lines"),
        # fiberjob bt all: the suspended jobs' functions, below the switch that suspended them.
        (r"#\d+ .*fiberjob::this_fiber::wait[^\n]*\n#\d+ [^\n]*wait_for_assets[^\n]*\n"
         r"#\d+ [^\n]*plain_job_waiting_on_counter", "the counter waiter's backtrace"),
        (r"#\d+ [^\n]*fiberjob::Event::wait[^\n]*\n#\d+ [^\n]*plain_job_waiting_on_event",
         "the event waiter's backtrace"),
        # The job on the extra stack class's fiber: listed in its pool and backtraced.
        (r"stack class 1 'large' \(its fibers are 1\.N\): \d+ fibers made, 1 in use\n"
         r"\s+fiber 1\.\d+\s+suspended [^\n]*\n\s+job:\s+lambda > plain_job_on_large_stack\n"
         r"\s+waits: counter 0x[0-9a-f]+ \(pending 1\)", "the large-stack job in `fibers`"),
        (r"#\d+ [^\n]*plain_job_on_large_stack", "the large-stack job's backtrace"),
        # A bad argument gets the usage, not a Python exception.
        (r"usage: fiberjob bt FIBER", "the usage message for `fiberjob bt xyz`"),
    ]
    failures = []
    for pattern, what in expectations:
        if not re.search(pattern, output):
            failures.append("{}: missing {} (/{}/)".format(name, what, pattern))
    # Where each innermost coroutine is defined: also for g++'s coroutines with external
    # linkage and coroutine lambdas, whose actor functions have no line in the debug information.
    for coroutine, pattern in (
            ("wait_for_next_frame", r"#0 frame 0x[0-9a-f]+ wait_for_next_frame\n"
                                    r"\s+defined at \S+suspended_jobs.cpp:(\d+)\n"),
            ("lambda", r"waits on counter [^\n]*\n\s+#0 frame 0x[0-9a-f]+ lambda\n"
                       r"\s+defined at \S+suspended_jobs.cpp:(\d+)\n")):
        if not defined_within(output, pattern, coroutine_lines(source, coroutine)):
            failures.append("{}: {} is not shown defined at a line of its own (/{}/)".format(
                name, coroutine, pattern))
    if output.count("(suspended, last on worker") != 11:
        failures.append("{}: expected exactly 11 suspended fibers in `fiberjob bt all`".format(name))
    if "Python Exception" in output or "Error occurred in Python" in output:
        failures.append("{}: the extension raised an error".format(name))
    return failures


def check_without_library(gdb, source, work_dir):
    """Without a program (so without fiberjob's symbols) every command names what is missing."""
    output = run_gdb(gdb, source + [arg for command in COMMANDS for arg in ("-ex", command)],
                     work_dir, "no program")
    failures = []
    if output.count("no fiberjob debug information") != 2:  # fibers and bt all
        failures.append("no program: `fiberjob fibers`/`bt all` did not say what is missing")
    if "Python Exception" in output or "Error occurred in Python" in output:
        failures.append("no program: the extension raised a Python error")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--program", required=True)
    parser.add_argument("--extension", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--source", required=True, help="tests/gdb/suspended_jobs.cpp")
    parser.add_argument("--gdb", default="gdb")
    args = parser.parse_args()
    args.program = os.path.abspath(args.program)
    args.extension = os.path.abspath(args.extension)
    gdb = shutil.which(args.gdb)
    if gdb is None:
        print("gdb not found: run scripts/install-deps.sh (Debian package gdb)")
        return 1
    os.makedirs(args.work_dir, exist_ok=True)
    core = os.path.join(args.work_dir, "suspended_jobs.core")
    if os.path.exists(core):
        os.remove(core)
    source = ["-ex", "set pagination off", "-ex", "source " + args.extension]
    inspect = [arg for command in COMMANDS for arg in ("-ex", command)]
    inspect += ["-ex", "fiberjob bt xyz"]
    select_c = ["-ex", "source " + os.path.join(os.path.dirname(__file__), "select_c_frame.py")]
    live = run_gdb(gdb, source + ["-ex", "break fiberjob_debugger_stop", "-ex", "run"] + inspect +
                   ["-ex", "generate-core-file " + core, "-ex", "kill", args.program],
                   args.work_dir, "live process")
    failures = check(live, "live process", args.source)
    if os.path.exists(core):
        output = run_gdb(gdb, source + select_c + inspect + ["-ex", "show language"] +
                         [args.program, core], args.work_dir, "core file, C frame selected")
        if "selected a C frame" not in output:
            failures.append("core file: no C frame was found to select")
        if 'The current source language is "auto;' not in output:
            failures.append("core file: the commands did not restore `set language auto`")
        failures += check(output, "core file", args.source)
        os.remove(core)  # about 100 MB
    else:
        failures.append("no core file was written")
    failures += check_without_library(gdb, source, args.work_dir)
    for failure in failures:
        print("FAILED: " + failure)
    print("gdb test: " + ("passed" if not failures else "{} failures".format(len(failures))))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
