// Child process for the misuse death tests: each mode makes one mistake that fiberjob must
// stop with a clear message (and SIGABRT) instead of corrupting memory or hanging.
//   over_signal      a counter signalled more often than added to
//   destroy_pending  a counter destroyed while a unit added by hand is outstanding
//   destroy_waited   a counter destroyed while a job waits on it
//   attached_at_destroy  a JobSystem destroyed while a thread is still attached to it
//   detach_elsewhere     an AttachedWorker destroyed on another thread than its own
//   affine_at_destroy    a JobSystem destroyed while thread-affine jobs wait for an attached
//                        thread that never ran them
//   destroy_waited_event an Event destroyed while a job waits on it
//   destroy_waited_mutex a Mutex destroyed while a job waits to lock it
//   unlock_unowned       a Mutex unlocked that nobody locked
//   unlock_other         a Mutex unlocked by another thread than the job that locked it
//   job_ends_locked      a plain job returns still holding a Mutex it locked with lock()
//   coroutine_plain_lock a coroutine suspends (co_await) holding a Mutex locked with lock()
//   stuck_on_primitives  (not a mistake that stops: exits 0) a JobSystem destroyed while jobs
//                        wait forever on an Event and a Mutex; its report names them
//   event_after_shutdown an Event destroyed after its waiting job's JobSystem was destroyed
//   event_after_shutdown_set  (exits 0) the same, but set() first, as event.hpp says

#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  ::alarm(30);  // if the mistake went unnoticed and something hangs: die by SIGALRM, not hang
  const char* mode = argv[1];
  fiberjob::Config config;
  config.worker_count = 1;
  config.attachable_threads = 1;
  fiberjob::JobSystem js{config};
  if (std::strcmp(mode, "over_signal") == 0) {
    fiberjob::Counter counter;
    counter.add(1);
    counter.signal();
    counter.signal();  // one too many
  } else if (std::strcmp(mode, "destroy_pending") == 0) {
    fiberjob::Counter counter;
    counter.add(1);  // nothing may ever signal it: the destructor cannot join
  } else if (std::strcmp(mode, "destroy_waited") == 0) {
    auto* gate = new fiberjob::Counter();
    gate->add(1);
    fiberjob::Counter done;
    js.run(done, [gate] { fiberjob::this_fiber::wait(*gate); });
    while (js.stats().fibers_in_use < 2) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the link complete
    delete gate;                                                 // a job is still linked on it
  } else if (std::strcmp(mode, "attached_at_destroy") == 0) {
    new fiberjob::AttachedWorker(js);  // never destroyed: js's destructor runs while attached
  } else if (std::strcmp(mode, "affine_at_destroy") == 0) {
    auto* attached = new fiberjob::AttachedWorker(js);  // never destroyed, never runs them
    auto* pending = new fiberjob::Counter();            // outlives the abort
    for (int i = 0; i < 3; ++i) attached->spawn(*pending, [] {});
  } else if (std::strcmp(mode, "detach_elsewhere") == 0) {
    auto* attached = new fiberjob::AttachedWorker(js);
    std::thread([attached] { delete attached; }).join();
  } else if (std::strcmp(mode, "destroy_waited_event") == 0) {
    auto* event = new fiberjob::Event();
    fiberjob::Counter done;
    js.run(done, [event] { fiberjob::this_fiber::wait(*event); });
    while (js.stats().fibers_in_use < 2) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the link complete
    delete event;                                                // a job is still linked on it
  } else if (std::strcmp(mode, "destroy_waited_mutex") == 0) {
    auto* mutex = new fiberjob::Mutex();
    mutex->lock();
    fiberjob::Counter done;
    js.run(done, [mutex] { std::scoped_lock lock(*mutex); });
    while (js.stats().fibers_in_use < 2) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the link complete
    delete mutex;                                                // a job waits to lock it
  } else if (std::strcmp(mode, "unlock_unowned") == 0) {
    fiberjob::Mutex mutex;
    mutex.unlock();
  } else if (std::strcmp(mode, "unlock_other") == 0) {
    fiberjob::Mutex mutex;
    fiberjob::Event locked;
    fiberjob::Event finish;
    fiberjob::Counter done;
    js.run(done, [&] {
      std::scoped_lock lock(mutex);
      locked.set();
      fiberjob::this_fiber::wait(finish);
    });
    fiberjob::this_fiber::wait(locked);
    mutex.unlock();  // this thread never locked it
  } else if (std::strcmp(mode, "job_ends_locked") == 0) {
    fiberjob::Mutex mutex;
    fiberjob::Counter done;
    js.run(done, [&mutex] { mutex.lock(); });  // returns holding it
    js.wait(done);
  } else if (std::strcmp(mode, "coroutine_plain_lock") == 0) {
    fiberjob::Mutex mutex;
    fiberjob::Event never;
    fiberjob::Counter done;
    js.run(done, [&](fiberjob::Context&) -> fiberjob::Task<> {
      mutex.lock();
      co_await never;  // suspends holding a plain lock: may resume on another fiber
      mutex.unlock();
    });
    js.wait(done);
  } else if (std::strcmp(mode, "event_after_shutdown") == 0 ||
             std::strcmp(mode, "event_after_shutdown_set") == 0) {
    auto* event = new fiberjob::Event();
    {
      fiberjob::JobSystem stuck{config};
      auto* done = new fiberjob::Counter();  // counts a job that never ends: never destroyed
      stuck.run(*done, [event] { fiberjob::this_fiber::wait(*event); });
      while (stuck.stats().fibers_in_use < 2) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the link complete
    }  // reported: one fiber still suspended, waiting on the event
    if (std::strcmp(mode, "event_after_shutdown_set") == 0) event->set();
    delete event;
    std::puts("event destroyed");
    return 0;
  } else if (std::strcmp(mode, "stuck_on_primitives") == 0) {
    std::fflush(stdout);
    {
      fiberjob::JobSystem stuck{config};
      // Never destroyed: the stuck jobs stay linked in them.
      auto* never = new fiberjob::Event();
      auto* held = new fiberjob::Mutex();
      held->lock();
      auto* done = new fiberjob::Counter();  // counts jobs that never end
      stuck.run(*done, [never] { fiberjob::this_fiber::wait(*never); });
      stuck.run(*done, [held] { std::scoped_lock lock(*held); });
      while (stuck.stats().fibers_in_use < 3) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the links complete
    }  // the report names what each stuck fiber waits on
    return 0;
  } else {
    return 2;
  }
  std::puts("unexpected: the mistake went unnoticed");
  return 0;
}
