// A translation unit built with FIBERJOB_NO_TRACE: its FIBERJOB_TRACE_SCOPE compiles to nothing
// (trace_test.cpp checks that its zone never reaches the trace).

#define FIBERJOB_NO_TRACE
#include <fiberjob/trace.hpp>

void zone_compiled_out();

void zone_compiled_out() { FIBERJOB_TRACE_SCOPE("compiled_out"); }
