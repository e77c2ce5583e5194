// The program the debugger test (tests/gdb/run_gdb_test.py) inspects with scripts/gdb/fiberjob.py:
// a named plain job suspended on a counter, one suspended on an event, one suspended on the
// event through this_fiber::wait(event), one on a fiber of an extra stack class suspended on the
// counter, one suspended 200 calls deep, a coroutine job suspended three tasks deep, a named one
// whose lambda awaits a coroutine with external linkage (suspended on the event), and one whose
// lambda waits itself; an attached thread whose job waits on the counter on the thread's own
// stack (suspended: the thread runs other jobs on a pooled fiber meanwhile). A second job system
// with no fiber to spare (two jobs suspended on the counter hold them) has an attached thread
// whose job waits on the event parked on the thread's own stack. When all of them wait it calls
// fiberjob_debugger_stop(), where the test stops it (and writes a core file); run on its own,
// it releases the jobs and exits 0.

#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

namespace {

fiberjob::Counter g_assets_loaded;  // held at 1 by main: the waits below suspend
fiberjob::Event g_frame_started;
// Each job below waits on an object of its own where its body would otherwise be the same as
// another's: the linker would fold identical functions into one, and the backtraces would name
// the other.
fiberjob::Event g_second_frame;          // this_fiber::wait(event)
fiberjob::Counter g_attached_gate;       // held at 1 by main: the suspended attached thread's job
fiberjob::Event g_attached_released;     // the parked attached thread's job
std::atomic<int> g_about_to_suspend{0};  // jobs that reached their wait
fiberjob::Counter g_level_parts;         // held at 2 by main: a value wait for 1 suspends
fiberjob::Mutex g_level_lock;            // held by main: Mutex::lock suspends
fiberjob::Counter g_loading_gate;        // held at 1 by main: the job with a stop token
std::stop_source g_cancel_loading;       // the stop token of a job that waits on a counter

/// Named functions (not lambdas), kept out of line, so that the backtraces name them. The empty
/// asm after each call keeps the call out of tail position: clang turns a tail call into a
/// jump, and the caller's frame would then be missing from the backtrace.
[[gnu::noinline]] void wait_for_assets(fiberjob::Context& ctx) {
  static_cast<void>(ctx);
  g_about_to_suspend.fetch_add(1);
  fiberjob::this_fiber::wait(g_assets_loaded);  // suspends this job's fiber
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void plain_job_waiting_on_counter(fiberjob::Context& ctx) {
  wait_for_assets(ctx);
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void plain_job_waiting_on_event() {
  g_about_to_suspend.fetch_add(1);
  g_frame_started.wait();
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void plain_job_waiting_in_this_fiber_wait() {
  g_about_to_suspend.fetch_add(1);
  fiberjob::this_fiber::wait(g_second_frame);  // calls Event::wait: the call it waits in
  asm volatile("" ::: "memory");
}

// Waits for g_level_parts to drop to 1 through the counter's list of value waiters, which
// sets flag bits in the counter's count word: its pending count is still 2.
[[gnu::noinline]] void plain_job_waiting_for_a_value() {
  g_about_to_suspend.fetch_add(1);
  fiberjob::this_fiber::wait(g_level_parts, 1);
  asm volatile("" ::: "memory");
}

// Waits on g_level_parts for 0 while the value waiter above keeps flag bits in its count word.
[[gnu::noinline]] void plain_job_waiting_on_flagged_counter() {
  g_about_to_suspend.fetch_add(1);
  fiberjob::this_fiber::wait(g_level_parts);
  asm volatile("" ::: "memory");
}

// Mutex::lock ends in a private member: the call it waits in is still Mutex::lock.
[[gnu::noinline]] void plain_job_waiting_on_mutex() {
  g_about_to_suspend.fetch_add(1);
  g_level_lock.lock();
  g_level_lock.unlock();
  asm volatile("" ::: "memory");
}

// A job with a stop token waits on a counter through its stoppable wait. (A counter of its own:
// a body identical to another job's function would be folded into it by the compiler.)
[[gnu::noinline]] void plain_job_with_stop_token() {
  g_about_to_suspend.fetch_add(1);
  fiberjob::this_fiber::wait(g_loading_gate);
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void attached_job_waiting_on_counter() {
  g_about_to_suspend.fetch_add(1);
  fiberjob::this_fiber::wait(g_attached_gate);  // on the attached thread's own stack
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void attached_job_parked_on_event() {
  g_about_to_suspend.fetch_add(1);
  g_attached_released.wait();  // no fiber is free: the attached thread parks on its own stack
  asm volatile("" ::: "memory");
}

/// Attaches the calling thread to `system` and runs one job on its own stack: `job`, which
/// waits until main releases it.
void attached_thread(fiberjob::JobSystem& system, void (*job)()) {
  fiberjob::AttachedWorker attached{system};
  fiberjob::Counter done;
  attached.spawn(done, [job] { job(); });
  if (attached.run_pending() != 1) std::fputs("the attached job did not run\n", stderr);
  system.wait(done);
}

/// How many attached threads' own stacks write_diagnostics shows waiting on something.
int attached_threads_waiting() {
  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  if (out == nullptr) return 0;
  fiberjob::write_diagnostics(out);
  std::fclose(out);
  int waiting = 0;
  const std::string report(text, size);
  std::free(text);
  for (std::size_t at = report.find("on its own stack: waits on"); at != std::string::npos;
       at = report.find("on its own stack: waits on", at + 1)) {
    ++waiting;
  }
  return waiting;
}

[[gnu::noinline]] void plain_job_on_large_stack() {
  g_about_to_suspend.fetch_add(1);
  fiberjob::this_fiber::wait(g_assets_loaded);
  asm volatile("" ::: "memory");
}

fiberjob::Task<int> stream_chunk(fiberjob::Context& ctx) {
  g_about_to_suspend.fetch_add(1);
  co_await ctx.wait(g_assets_loaded);
  co_return 1;
}

fiberjob::Task<int> load_region(fiberjob::Context& ctx) {
  const int chunks = co_await stream_chunk(ctx);  // await site: load_region
  co_return chunks;
}

fiberjob::Task<> coroutine_job_loading_level(fiberjob::Context& ctx) {
  const int chunks = co_await load_region(ctx);  // await site: coroutine_job_loading_level
  if (chunks != 1) std::fputs("unexpected chunk count\n", stderr);
}

fiberjob::Task<int> parse_chunk_header() {
  throw std::runtime_error("bad chunk header");
  co_return 0;
}

fiberjob::Task<int> read_region_header() {
  const int size = co_await parse_chunk_header();
  co_return size;
}

/// A coroutine job that catches an exception thrown two tasks down and prints its await chain.
fiberjob::Task<> job_catching_a_bad_header() {
  try {
    static_cast<void>(co_await read_region_header());
  } catch (const std::exception& error) {
    std::printf("caught \"%s\"; await chain at the throw:\n", error.what());
    fiberjob::print_await_chain(stdout, fiberjob::await_chain_of(std::current_exception()));
  }
}

/// A plain job that waits 200 calls deep: its `job:` line keeps both ends of the chain.
[[gnu::noinline]] void recurse_then_wait(int depth) {
  if (depth == 0) {
    g_about_to_suspend.fetch_add(1);
    fiberjob::this_fiber::wait(g_assets_loaded);
  } else {
    recurse_then_wait(depth - 1);
  }
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void plain_job_deep_in_recursion() {
  recurse_then_wait(200);
  asm volatile("" ::: "memory");
}

}  // namespace

/// A coroutine with external linkage (g++ gives its actor function no line of its own).
fiberjob::Task<> wait_for_next_frame() {  // coroutine begins: wait_for_next_frame
  g_about_to_suspend.fetch_add(1);
  co_await g_frame_started;
}  // coroutine ends: wait_for_next_frame

/// The test's breakpoint: called once every job is suspended.
extern "C" [[gnu::noinline]] void fiberjob_debugger_stop() { asm volatile("" ::: "memory"); }

int main(int argc, char** argv) {
  const bool print_chains = argc > 1 && std::strcmp(argv[1], "--print-chains") == 0;
  fiberjob::Config config;
  config.worker_count = 2;
  config.track_coroutine_jobs = true;  // for `fiberjob coroutines`
  config.capture_await_chains = print_chains;
  config.attachable_threads = 1;
  config.stack_classes.push_back(
      {.name = "large", .stack_size = 256 * 1024, .fiber_count = 2, .max_fiber_count = 4});
  fiberjob::JobSystem system(config);
  // Job system 1: one worker, one attached thread, and three fibers: the worker's and the two
  // that the jobs suspended on the counter hold, so its attached thread finds none to run
  // other jobs on while its job waits, and parks.
  fiberjob::Config tight_config;
  tight_config.worker_count = 1;
  tight_config.attachable_threads = 1;
  tight_config.fiber_count = 3;
  tight_config.max_fiber_count = 3;
  fiberjob::JobSystem tight(tight_config);
  g_assets_loaded.add(1);
  g_attached_gate.add(1);
  fiberjob::Counter jobs;
  fiberjob::Counter holders;
  for (int i = 0; i < 2; ++i) {
    tight.run(holders, [] {
      g_about_to_suspend.fetch_add(1);
      fiberjob::this_fiber::wait(g_assets_loaded);
    });
  }
  while (tight.stats().fibers_in_use < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Suspended before the attached threads start, whose waits could run them on their stacks.
  g_level_parts.add(2);
  g_loading_gate.add(1);
  g_level_lock.lock();
  system.run(jobs, [] { plain_job_waiting_for_a_value(); });
  system.run(jobs, [] { plain_job_waiting_on_flagged_counter(); });
  system.run(jobs, [] { plain_job_waiting_on_mutex(); });
  system.run(
      jobs, [] { plain_job_with_stop_token(); }, g_cancel_loading.get_token());
  while (g_about_to_suspend.load() < 6 || system.stats().fiber_switches < 4) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::thread suspended_attached(attached_thread, std::ref(system),
                                 attached_job_waiting_on_counter);
  std::thread parked_attached(attached_thread, std::ref(tight), attached_job_parked_on_event);
  system.run(jobs, {.name = "asset streamer"},
             [](fiberjob::Context& ctx) { plain_job_waiting_on_counter(ctx); });
  system.run(jobs, [] { plain_job_waiting_on_event(); });
  system.run(jobs, [] { plain_job_waiting_in_this_fiber_wait(); });
  system.run(jobs, {.stack_class = 1}, [] { plain_job_on_large_stack(); });
  system.run(jobs, [] { plain_job_deep_in_recursion(); });
  system.run(jobs, [](fiberjob::Context& ctx) { return coroutine_job_loading_level(ctx); });
  system.run(jobs, {.name = "frame follower"}, [](fiberjob::Context&) -> fiberjob::Task<> {
    co_await wait_for_next_frame();  // await site: lambda
  });
  system.run(jobs, [](fiberjob::Context& ctx) -> fiberjob::Task<> {  // coroutine begins: lambda
    g_about_to_suspend.fetch_add(1);
    co_await ctx.wait(g_assets_loaded);
  });  // coroutine ends: lambda
  // The sixteen jobs reached their waits, the nine plain ones of job system 0 and the two of
  // job system 1 switched away from their fibers, and both attached threads' own stacks wait;
  // a moment more lets the last switch finish on its worker.
  while (g_about_to_suspend.load() < 16 || system.stats().fiber_switches < 9 ||
         tight.stats().fiber_switches < 2 || attached_threads_waiting() < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  fiberjob_debugger_stop();
  if (print_chains) fiberjob::write_diagnostics(stdout);
  g_level_lock.unlock();
  g_level_parts.signal();
  g_level_parts.signal();
  g_loading_gate.signal();
  g_frame_started.set();
  g_second_frame.set();
  g_attached_released.set();
  g_assets_loaded.signal();
  g_attached_gate.signal();
  system.wait(jobs);
  tight.wait(holders);
  suspended_attached.join();
  parked_attached.join();
  if (print_chains) {
    system.run(jobs, [] { return job_catching_a_bad_header(); });
    system.wait(jobs);
  }
  std::puts("all jobs finished");
  return 0;
}
