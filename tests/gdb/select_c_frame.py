# Sourced by the debugger test (run_gdb_test.py) before the fiberjob commands: selects a frame
# whose language is C or assembly (a C library frame such as a parked worker's futex `syscall`),
# the state every thread of an attached hung process or of its core file is in, and prints which
# one it chose. In such a frame gdb parses expressions as C, which knows no namespaces.

import gdb


def language_is_c():
    shown = gdb.execute("show language", to_string=True)
    return 'currently c"' in shown or 'currently asm"' in shown


def select_c_frame():
    for thread in gdb.selected_inferior().threads():
        thread.switch()
        frame = gdb.newest_frame()
        while frame is not None:
            frame.select()
            if language_is_c():
                print("selected a C frame: thread {} frame {} ({})".format(
                    thread.num, frame.level(), frame.name()))
                return
            frame = frame.older()
    print("no C frame in any thread")


select_c_frame()
