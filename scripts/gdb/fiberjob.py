# gdb extension for fiberjob: lists the pooled fibers and the live coroutine jobs of every job
# system in the process, and prints the backtrace of a suspended fiber from its saved context.
# Works on a live process and on a core file, whatever frame is selected (the commands read the
# program as C++ even in a C library frame). Needs the library's debug information (-g).
#
#   (gdb) source scripts/gdb/fiberjob.py
#   (gdb) fiberjob fibers [all]   every fiber that is not idle in its pool (all: also the idle ones)
#   (gdb) fiberjob coroutines     every live coroutine job, with its chain of awaited tasks
#   (gdb) fiberjob bt N [S]       backtrace of suspended fiber N (of job system S, default 0); a
#                                 fiber of stack class C (Config::stack_classes) is C.N
#   (gdb) fiberjob bt all         backtraces of every suspended fiber
#
# Where the library keeps what this reads (see docs/debugging.md):
#   fiberjob::detail::g_debug_schedulers / g_debug_scheduler_count  the live job systems
#   Scheduler::fibers_ (FiberPool): chunks_[i]->fibers[j], created_   every pooled fiber
#   Scheduler::class_pools_ (vector of unique_ptr<FiberPool>)         the stack classes' pools
#   fiberjob::detail::g_coroutine_jobs[shard].head                    root tasks of coroutine jobs
#   TaskPromiseBase::awaiting_ (std::atomic)                          the task a task awaits
#   TaskPromiseBase::awaited_at_                        return address of the co_await awaiting it
#
# A suspended fiber's Boost.Context fcontext (Fiber::context.fctx_) is the stack pointer saved
# by jump_fcontext (Boost 1.74, x86_64 System V, jump_x86_64_sysv_elf_gas.S): the saved
# registers sit on the fiber's stack at that address, as below; the fiber resumes at `rip`
# with rsp = fctx + 0x40.

import re

import gdb
import gdb.unwinder

FCONTEXT_X86_64 = {"r12": 0x08, "r13": 0x10, "r14": 0x18, "r15": 0x20, "rbx": 0x28, "rbp": 0x30,
                   "rip": 0x38}
FCONTEXT_X86_64_SIZE = 0x40
# The promise's offset in a coroutine frame (g++ and clang++: after the resume and destroy
# function pointers, for promises aligned to at most 16 bytes).
PROMISE_OFFSET_IN_FRAME = 16

STATES = {0: "pooled", 1: "running", 2: "suspended", 3: "native"}


def lookup(name):
    return gdb.lookup_type(name)


def raw(value, target_type):
    """Reads `value`'s first bytes as `target_type` (std::atomic<T> and std::unique_ptr<T> hold
    their T at offset 0 in libstdc++ and libc++)."""
    return value.address.cast(target_type.pointer()).dereference()


def atomic(value):
    return raw(value, value.type.strip_typedefs().template_argument(0))


NO_LIBRARY = ("fiberjob: {} ({}). The extension needs a process or core file that links "
              "fiberjob built with debug information (-g); see docs/debugging.md.")


def schedulers():
    try:
        count = int(gdb.parse_and_eval("'fiberjob::detail::g_debug_scheduler_count'"))
        array = gdb.parse_and_eval("'fiberjob::detail::g_debug_schedulers'")
        lookup("fiberjob::detail::FiberPool")
    except gdb.error as error:
        raise gdb.GdbError(NO_LIBRARY.format("no fiberjob debug information", error))
    return [array[i].dereference() for i in range(count)]


def pools(scheduler):
    """(stack class, class name, FiberPool) of each fiber pool of a job system: the default pool
    (class 0) and one per Config::stack_classes entry (class i + 1)."""
    yield 0, "default", scheduler["fibers_"]
    class_pools = scheduler["class_pools_"]["_M_impl"]  # std::vector<std::unique_ptr<FiberPool>>
    pool_type = lookup("fiberjob::detail::FiberPool").pointer()
    begin, end = class_pools["_M_start"], class_pools["_M_finish"]
    for i in range(int(end - begin)):
        pool = raw(begin[i], pool_type).dereference()
        yield i + 1, pool["class_name_"]["_M_dataplus"]["_M_p"].string(), pool


def fiber_id(stack_class, fiber):
    """How the commands name a fiber: its index in the default pool, CLASS.INDEX in the pool of
    stack class CLASS."""
    index = int(fiber["index"])
    return str(index) if stack_class == 0 else "{}.{}".format(stack_class, index)


def all_fibers(scheduler):
    """(stack class, fiber) of every fiber of every pool of a job system."""
    for stack_class, _, pool in pools(scheduler):
        for fiber in fibers(pool):
            yield stack_class, fiber


def fibers(pool):
    created = int(atomic(pool["created_"]))
    chunk_type = lookup("fiberjob::detail::FiberPool::Chunk").pointer()
    chunks = raw(pool["chunks_"], chunk_type.pointer())  # std::atomic<Chunk*>[]
    per_chunk = int(gdb.parse_and_eval("fiberjob::detail::FiberPool::kChunkFibers"))
    for index in range(created):
        chunk = chunks[index // per_chunk]
        yield chunk.dereference()["fibers"][index % per_chunk]


def state_of(fiber):
    return STATES.get(int(atomic(fiber["state"])), "?")


def saved_registers(fiber):
    """The registers jump_fcontext saved on the fiber's stack, or None (never suspended)."""
    fctx = int(fiber["context"]["fctx_"])
    if fctx == 0:
        return None
    u64 = lookup("unsigned long").pointer()
    regs = {name: int(gdb.Value(fctx + offset).cast(u64).dereference())
            for name, offset in FCONTEXT_X86_64.items()}
    regs["rsp"] = fctx + FCONTEXT_X86_64_SIZE
    return regs


class FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class FiberUnwinder(gdb.unwinder.Unwinder):
    """While a fiber is selected (`regs` set), makes the caller of the selected thread's
    innermost frame the suspended fiber's frame, with the registers its switch saved: frame 1
    onwards is then the fiber's stack. It only reads memory, so it works on core files, where
    gdb cannot write registers."""

    def __init__(self):
        super().__init__("fiberjob fiber")
        self.regs = None

    def __call__(self, pending_frame):
        if self.regs is None or pending_frame.level() != 0:
            return None
        frame_id = FrameId(pending_frame.read_register("rsp"), pending_frame.read_register("rip"))
        info = pending_frame.create_unwind_info(frame_id)
        u64 = lookup("unsigned long")
        for name in ("rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15"):
            info.add_saved_register(name, gdb.Value(self.regs[name]).cast(u64))
        return info


UNWINDER = FiberUnwinder()
gdb.unwinder.register_unwinder(None, UNWINDER, replace=True)


class FiberSelected:
    """`with FiberSelected(regs):` the selected thread's frames from 1 on are the fiber's."""

    def __init__(self, regs):
        self.regs = regs

    def __enter__(self):
        UNWINDER.regs = self.regs
        gdb.invalidate_cached_frames()
        return self

    def __exit__(self, *exc):
        UNWINDER.regs = None
        gdb.invalidate_cached_frames()
        return False


def frame_names(limit=4096):
    """Qualified function names of the selected fiber's frames, newest first."""
    names = []
    frame = gdb.newest_frame().older()  # frame 0 is the thread's own (FiberUnwinder)
    while frame is not None and len(names) < limit:
        function = frame.function()
        names.append(function.print_name if function is not None else (frame.name() or "??"))
        try:
            frame = frame.older()
        except gdb.error:
            break
    return names


def is_public(name):
    """True for a function of fiberjob's public API: in namespace fiberjob, not in
    fiberjob::detail, an anonymous namespace of the library's sources, or a lambda of it."""
    return (name.startswith("fiberjob::") and not name.startswith("fiberjob::detail::") and
            "(anonymous namespace)" not in name and "{lambda" not in name and
            "$_" not in name)


# Private members of the public classes (include/fiberjob/*.hpp, `private:`): not the call a
# job is blocked in. A public call that ends in a tail call to one of them leaves no frame of
# its own, so each maps to the public call that reaches it.
PRIVATE_MEMBERS = {
    "Mutex": {"try_lock_as": "try_lock", "lock_as": "lock", "unlock_as": "unlock",
              "release": "unlock", "acquire_or_queue": "lock", "link_locker": "lock",
              "unlink_locker": "lock", "finish_lock": "lock"},
    "Event": {"link_waiter": "wait", "unlink_waiter": "wait", "remove": "wait",
              "finish_wait": "wait"},
    "Semaphore": {"link_acquirer": "acquire", "unlink_acquirer": "acquire",
                  "finish_acquire": "acquire"},
    "ConditionVariable": {"check_wait": "wait", "begin_wait": "wait", "link_waiter": "wait",
                          "unlink_waiter": "wait", "hand_to_own_mutex": "wait",
                          "finish_wait": "wait", "hand_to_mutex": "notify_all"},
}


# Helpers of the library's sources in a public namespace (an anonymous namespace in
# src/*.cpp) that a public call may tail-call, leaving no frame of its own (clang does for the
# stop-token path of this_fiber::wait; this_fiber::yield tail-calls its stop-token and
# not-on-fiber path): each stands for the public call that reaches it.
INTERNAL_CALLS = {
    "fiberjob::this_fiber::wait_with_stop_token": "fiberjob::this_fiber::wait",
    "fiberjob::this_fiber::yield_unusual": "fiberjob::this_fiber::yield",
}


def public_call_of(name):
    """The public call a frame stands for: `name` (without its parameters) for a public call,
    the public member that reaches a private member, or None for a private member seen as is."""
    name = re.sub(r"^\S+ (?=fiberjob::)", "", plain_name(name))  # a return type gdb put first
    found = re.fullmatch(r"fiberjob::(\w+)::(\w+)", name)
    if found and found.group(2) in PRIVATE_MEMBERS.get(found.group(1), {}):
        return None
    return name


def describe_stack(names):
    """(job, waits_in) from a suspended fiber's frame names, newest first: waits_in is the call
    it waits in, the innermost public fiberjob function on top of the job (`Event::wait` when
    the job called `this_fiber::wait(event)`, which calls it; never a private member such as
    `Mutex::lock_as`: the public call that reaches it, `Mutex::lock`); job is the chain of calls
    from the frame that fiberjob's invoke_job called down to the job's own function that called
    into fiberjob (the public calls on top of it are left out: waits_in names the wait)."""
    names = [INTERNAL_CALLS.get(plain_name(name), name) for name in names]
    top = len(names)
    for i, name in enumerate(names):
        # (a frame gdb names from the symbol table alone may carry its return type first)
        if re.match(r"(\S+ )?fiberjob::detail::(invoke_job|call_job)<", name):
            top = i
            break
    first = next((i for i in range(top) if is_public(names[i])), None)
    if first is None:
        return "?", "?"
    caller = first  # the job's innermost own frame: past the fiberjob calls above it
    while caller < top and names[caller].startswith("fiberjob::"):
        caller += 1
    waits_in = next((public_call_of(names[i]) for i in range(first, caller)
                     if public_call_of(names[i]) is not None), None)
    if waits_in is None:  # only private members: the public call tail-called the innermost
        found = re.search(r"fiberjob::(\w+)::(\w+)$", plain_name(names[first]))
        waits_in = "fiberjob::{}::{}".format(found.group(1),
                                             PRIVATE_MEMBERS[found.group(1)][found.group(2)])
    calls = [plain_name(name) for name in reversed(names[caller:top])]
    return call_chain(calls), waits_in


def call_chain(calls, width=100):
    """`calls` (outermost first) joined with " > ", at most about `width` characters: a deep
    chain keeps both ends, the job's entry function and the call it waits in, and elides the
    middle ("... N more ...")."""
    text = " > ".join(calls)
    if len(text) <= width:
        return text or "?"
    if len(calls) == 1:
        return short(text, width)
    calls = [short(call, 40) for call in calls]
    outer, inner = [calls[0]], [calls[-1]]
    left, right = 1, len(calls) - 2
    used = len(calls[0]) + len(calls[-1]) + 20  # 20: room for the elision
    while left <= right:  # more calls from both ends in turn, while they fit
        take_outer = len(outer) <= len(inner)
        call = calls[left] if take_outer else calls[right]
        if used + len(call) + 3 > width:
            break
        used += len(call) + 3
        if take_outer:
            outer.append(call)
            left += 1
        else:
            inner.insert(0, call)
            right -= 1
    elided = right - left + 1
    middle = ["... {} more ...".format(elided)] if elided > 0 else []
    return " > ".join(outer + middle + inner)


def plain_name(name):
    """A function's name without its parameter list and anonymous-namespace prefix."""
    name = name.replace("(anonymous namespace)::", "")
    # g++ names a lambda's call operator "operator()" in a "{lambda(...)#N}" scope; clang names
    # the closure "$_N" ("main::$_0::operator()").
    if name.startswith("operator()") or re.search(r"\$_\d+::operator\(\)", name):
        return "lambda"
    depth = 0
    for i in range(len(name) - 1, -1, -1):  # the last top-level '(' starts the parameters
        if name[i] == ")":
            depth += 1
        elif name[i] == "(":
            depth -= 1
            if depth == 0:
                return name[:i] if i > 0 else name
    return name


def short(name, width=70):
    return name if len(name) <= width else name[:width - 3] + "..."


class FiberjobPrefix(gdb.Command):
    """fiberjob: inspect fiberjob job systems (fibers, coroutines, bt)."""

    def __init__(self):
        super().__init__("fiberjob", gdb.COMMAND_STACK, gdb.COMPLETE_COMMAND, prefix=True)


class FiberjobFibers(gdb.Command):
    """fiberjob fibers [all]: every fiber of every job system that is not idle in its pool (with
    `all`, the idle ones too): state, the job it runs, what it waits on, its last worker."""

    def __init__(self):
        super().__init__("fiberjob fibers", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        if arg.strip() not in ("", "all"):
            raise gdb.GdbError("usage: fiberjob fibers [all]")
        show_all = arg.strip() == "all"
        for s_index, scheduler in enumerate(schedulers()):
            pool = scheduler["fibers_"]
            print("job system {} at {}: {} workers, {} fibers made, {} in use".format(
                s_index, scheduler.address, int(scheduler["workers_"]["_M_impl"]["_M_finish"] -
                                                scheduler["workers_"]["_M_impl"]["_M_start"]),
                int(atomic(pool["created_"])), int(atomic(pool["in_use_"]))))
            for stack_class, name, pool in pools(scheduler):
                print_pool(stack_class, name, pool, show_all)
            for slot in attached_slots(scheduler):
                print("  " + slot_line(slot))


def print_pool(stack_class, name, pool, show_all):
    """Lists a pool's fibers; the default pool's counts are on the job system's line."""
    if stack_class != 0:
        print("  stack class {} '{}' (its fibers are {}.N): {} fibers made, {} in use".format(
            stack_class, name, stack_class, int(atomic(pool["created_"])),
            int(atomic(pool["in_use_"]))))
    idle = 0
    for fiber in fibers(pool):
        state = state_of(fiber)
        if state == "pooled" and not show_all:
            idle += 1
            continue
        print("  " + fiber_line(fiber, stack_class, state))
    if idle:
        print("  ({} idle fibers in the pool; `fiberjob fibers all` lists them)".format(idle))


def attached_slots(scheduler):
    """The Worker of each slot for an attached thread (Config::attachable_threads), in order."""
    workers = scheduler["workers_"]["_M_impl"]  # std::vector<std::unique_ptr<Worker>>
    worker_type = lookup("fiberjob::detail::Worker").pointer()
    begin, end = workers["_M_start"], workers["_M_finish"]
    for i in range(int(end - begin)):
        worker = raw(begin[i], worker_type).dereference()
        if bool(worker["is_slot"]):
            yield worker


def pending_count(counter_address):
    """A Counter's pending count as Counter::pending() gives it: its count word without the
    wait-for-value flag bits (counter_wait_list.hpp: kValueWaiters, bit 59; kValueLocked, bit
    60), or, while its final signaller drains the wait list (the word at kWaking = -2^62 and
    above), the units added meanwhile."""
    counter = gdb.Value(counter_address).cast(lookup("fiberjob::Counter").pointer()).dereference()
    value = int(atomic(counter["value_"]))
    if value >= 0:
        return value & ((1 << 59) - 1)
    if value < -(1 << 61):  # CounterWaitList::is_waking
        return value + (1 << 62)
    return value


def waited_object(fiber):
    """What `fiber` (a pooled fiber or an attached thread's own stack) waits on, as
    write_diagnostics names it: "counter 0x... (pending N)", "Event 0x...", ..., or None."""
    counter = int(atomic(fiber["waiting_on"]))
    if counter:
        return "counter {:#x} (pending {})".format(counter, pending_count(counter))
    primitive = int(atomic(fiber["waiting_on_primitive"]))
    if primitive:
        what = atomic(fiber["waiting_on_what"])
        what = what.string() if int(what) != 0 else "a synchronisation primitive"
        if what == "a Counter":  # a stoppable counter wait (its StopBlock reports the Counter)
            return "counter {:#x} (pending {})".format(primitive, pending_count(primitive))
        if what == "a Counter's value":  # this_fiber::wait(counter, target)
            return "a Counter's value {:#x} (pending {})".format(primitive,
                                                                 pending_count(primitive))
        return "{} {:#x}".format(what, primitive)
    return None


def slot_line(slot):
    """A slot for an attached thread: free, or the attached thread and, when its own stack (no
    pooled fiber) waits, the job that waits there (by its JobOptions::name) and what it waits
    on. Suspended (its thread runs other jobs on a pooled fiber meanwhile): its saved registers
    give the job's chain of calls and the call it waits in, as for a fiber. Parked (no fiber
    was free, so the thread itself sleeps in the wait): its frames are the thread's own."""
    index = int(slot["index"])
    if not bool(atomic(slot["slot_taken"])):
        return "worker {}: slot for an attached thread (Config::attachable_threads), free".format(
            index)
    native = slot["native"]
    line = "attached thread of worker {}, on its own stack".format(index)
    waits = waited_object(native)
    if waits is None:
        return line + ": in no wait (outside the job system, or running a job)"
    name = job_name(atomic(native["job_name"]))
    if name:
        line += ", job" + name
    regs = saved_registers(native)
    if regs is None:  # running on its thread: parked there, its frames are the thread's
        return line + (":\n      waits: {} (parked on the thread's own stack: no fiber was free; "
                       "its frames are the thread's, `info threads`)".format(waits))
    with FiberSelected(regs):
        job, waits_in = describe_stack(frame_names())
    return line + " (suspended: the thread runs other jobs meanwhile):\n      job:   {}\n" \
        "      waits: {}, in {}".format(job, waits, plain_name(waits_in))


def job_name(pointer):
    """A job's JobOptions::name as ' "name"', or "" when it has none (a null pointer)."""
    if int(pointer) == 0:
        return ""
    try:
        return ' "{}"'.format(pointer.string())
    except (gdb.error, gdb.MemoryError, UnicodeDecodeError):
        return " (name at {:#x})".format(int(pointer))


def fiber_line(fiber, stack_class, state):
    worker = fiber["worker"]
    worker_text = "worker {}".format(int(worker["index"])) if int(worker) != 0 else "no worker"
    line = "fiber {:<4} {:<9} last on {}".format(fiber_id(stack_class, fiber), state, worker_text)
    if state != "suspended":
        return line
    name = job_name(atomic(fiber["job_name"]))
    if name:
        line += ", job" + name
    regs = saved_registers(fiber)
    job, waits_in = "?", "?"
    if regs is not None:
        with FiberSelected(regs):
            job, waits_in = describe_stack(frame_names())
    waits_in = plain_name(waits_in)
    # A counter it waits on as write_diagnostics names it (also a stoppable counter wait's and
    # a value wait's, which record it as their primitive), then the call; never shortened, so
    # the call's name stays whole.
    waited = waited_object(fiber)
    if waited is None or "ounter" not in waited:  # other primitives: the call names them
        waits = "in " + waits_in
    else:
        waits = "{}, in {}".format(waited, waits_in)
    return line + "\n      job:   {}\n      waits: {}".format(job, waits)


class FiberjobBt(gdb.Command):
    """fiberjob bt N [S]: the backtrace of suspended fiber N of job system S (default 0), read
    from the registers its last switch saved on its stack. fiberjob bt all: of every suspended
    fiber of every job system."""

    def __init__(self):
        super().__init__("fiberjob bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = arg.split()
        if not words:
            raise gdb.GdbError("usage: fiberjob bt FIBER [JOB_SYSTEM] | fiberjob bt all")
        systems = schedulers()
        if words[0] == "all":
            for s_index, scheduler in enumerate(systems):
                for stack_class, fiber in all_fibers(scheduler):
                    if state_of(fiber) == "suspended":
                        print_backtrace(fiber, stack_class, s_index)
            return
        if len(words) > 2 or not re.fullmatch(r"(\d+\.)?\d+", words[0]) or (
                len(words) == 2 and not words[1].isdigit()):
            raise gdb.GdbError("usage: fiberjob bt FIBER [JOB_SYSTEM] | fiberjob bt all "
                               "(FIBER: N, or CLASS.N for stack class CLASS, as `fiberjob "
                               "fibers` lists it; JOB_SYSTEM: N, default 0)")
        wanted = words[0]
        s_index = int(words[1]) if len(words) > 1 else 0
        if s_index >= len(systems):
            raise gdb.GdbError("no job system {} ({} live)".format(s_index, len(systems)))
        for stack_class, fiber in all_fibers(systems[s_index]):
            if fiber_id(stack_class, fiber) != wanted:
                continue
            state = state_of(fiber)
            if state != "suspended":
                raise gdb.GdbError("fiber {} is {}, not suspended: its stack is a thread's "
                                   "(`info threads`) or unused".format(wanted, state))
            print_backtrace(fiber, stack_class, s_index)
            return
        raise gdb.GdbError("no fiber {} in job system {}".format(wanted, s_index))


def print_backtrace(fiber, stack_class, s_index):
    print("fiber {} of job system {} (suspended, last on worker {}); frame #0 is the selected "
          "thread's, #1 on the fiber's:".format(fiber_id(stack_class, fiber), s_index,
                                                int(fiber["worker"]["index"])))
    with FiberSelected(saved_registers(fiber)):
        gdb.execute("backtrace")


def function_at(address):
    """(name, "file:line") of the function whose code holds `address`: for a coroutine's
    resume function, the coroutine and the line where it is defined."""
    block = gdb.block_for_pc(address)
    while block is not None and block.function is None:
        block = block.superblock
    if block is None:
        return "?? ({:#x})".format(address), "?"
    function = block.function
    if function.symtab is None:
        return plain_name(function.print_name), "?"
    line = function.line or first_body_line(function.symtab, block)
    return plain_name(function.print_name), "{}:{}".format(function.symtab.filename, line or "?")


def first_body_line(symtab, block):
    """The line of the first instruction of `block`'s function, when it is in `symtab`: where a
    function whose debug information has no line of its own is written. g++ gives a
    coroutine's actor function (`f() [clone .actor]`) no line unless the coroutine has internal
    linkage, but its entry's line is the coroutine's first line."""
    entry = gdb.find_pc_line(block.start)
    if entry.symtab is None or entry.symtab.filename != symtab.filename:
        return 0
    return entry.line


def coroutine_roots():
    shards = gdb.parse_and_eval("'fiberjob::detail::g_coroutine_jobs'")
    first, last = shards.type.strip_typedefs().range()
    for i in range(first, last + 1):
        promise = shards[i]["head"]
        while int(promise) != 0:
            yield promise
            promise = promise["job_links_"]["next"]


def await_chain(root):
    """(frame, resume, awaited_at) of each task of a job's await chain, innermost first:
    awaited_at is the return address (in the awaiting task's code) of the `co_await` that
    awaits the task, 0 for the root."""
    u64p = lookup("unsigned long").pointer()
    chain = []
    promise = root
    while int(promise) != 0 and len(chain) < 1024:
        frame = int(promise) - PROMISE_OFFSET_IN_FRAME
        resume = int(gdb.Value(frame).cast(u64p).dereference())
        chain.append((frame, resume, int(promise["awaited_at_"])))
        promise = atomic(promise["awaiting_"])
    return list(reversed(chain))


def source_line(return_address):
    """"file:line" of the call that returns to `return_address` (the line of the byte before
    it: the call instruction), or "?"."""
    line = gdb.find_pc_line(return_address - 1)
    if line.symtab is None:
        return "?"
    return "{}:{}".format(line.symtab.filename, line.line)


def coroutine_wait(job):
    """What a coroutine job waits on, from its JobRoot (waits_on, waits_on_what)."""
    address = int(atomic(job["waits_on"]))
    if address == 0:
        return "in no wait of fiberjob"
    what_pointer = atomic(job["waits_on_what"])
    what = what_pointer.string() if int(what_pointer) != 0 else "?"
    text = "waits on {} {:#x}".format(what, address)
    if what == "counter":
        text += " (pending {})".format(pending_count(address))
    return text


class FiberjobCoroutines(gdb.Command):
    """fiberjob coroutines: every live coroutine job with its await chain, innermost task first:
    each task as its coroutine function, the innermost with the line where it is defined, the
    others with the line of their `co_await` of the task before."""

    def __init__(self):
        super().__init__("fiberjob coroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        jobs = 0
        for root in coroutine_roots():
            jobs += 1
            job = root["job_root_"]
            print("coroutine job {}{} (root promise {}), {}; innermost task first:".format(
                jobs, job_name(job["name"]), root, coroutine_wait(job)))
            chain = await_chain(root)
            for depth, (frame, resume, _) in enumerate(chain):
                name, where = function_at(resume) if resume else ("(finished)", "?")
                if depth == 0:
                    where = "defined at " + where
                else:
                    where = "awaits #{} at {}".format(depth - 1, source_line(chain[depth - 1][2]))
                print("  #{} frame {:#x} {}\n       {}".format(depth, frame, name, where))
        if jobs == 0:
            print("no live coroutine job (they are listed only while a job system runs with "
                  "Config::track_coroutine_jobs = true)")


class CxxLanguage:
    """`with CxxLanguage():` gdb parses expressions and looks types up as C++, whatever the
    language of the selected frame (a hung process's or a core's threads all sit in C frames of
    the C library: futex, clock_nanosleep), and the user's language setting is restored after."""

    def __enter__(self):
        self.saved = gdb.parameter("language")
        if self.saved != "c++":
            gdb.execute("set language c++", to_string=True)
        return self

    def __exit__(self, *exc):
        if self.saved != "c++":
            gdb.execute("set language " + self.saved, to_string=True)
        return False


def in_cxx(invoke):
    """Wraps a command's invoke: runs it in C++ (CxxLanguage), and turns a gdb error the
    extension did not expect into a one-line message instead of a Python traceback."""

    def wrapped(self, arg, from_tty):
        with CxxLanguage():
            try:
                return invoke(self, arg, from_tty)
            except gdb.GdbError:
                raise
            except (gdb.error, gdb.MemoryError) as error:
                raise gdb.GdbError("fiberjob: cannot read the job systems here ({}); the "
                                   "process or core must be intact and built with -g".format(
                                       error))

    wrapped.__doc__ = invoke.__doc__
    return wrapped


for _command in (FiberjobFibers, FiberjobBt, FiberjobCoroutines):
    _command.invoke = in_cxx(_command.invoke)

FiberjobPrefix()
FiberjobFibers()
FiberjobBt()
FiberjobCoroutines()
