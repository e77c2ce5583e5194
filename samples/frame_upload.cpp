// frame_upload: workers build meshes, the main thread uploads them — its graphics context may
// be used on that thread only.
//
//   main (attached) ── frame loop: run_pending() uploads, then "renders" ──▶ next frame
//        ▲ attached.spawn(upload)                ▲ co_await ctx.resume_on(main)
//   workers: build mesh i (plain job)        texture streamer (coroutine): decode on a
//                                            worker, upload on main, resume_on_any, repeat
//
// The main thread attaches to the job system (AttachedWorker). Jobs send it work with
// attached.spawn (a plain job only it runs) or hop a coroutine onto it with
// co_await ctx.resume_on(main); the frame loop runs that work once per frame with
// run_pending(), which never blocks. GraphicsContext stands for an OpenGL context or a window
// system: every call checks that it runs on the thread that made it current.

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

namespace {

/// A stand-in for a thread-bound API: counts uploads, and calls from a wrong thread.
class GraphicsContext {
 public:
  // Not inlined: glibc declares pthread_self() const, so inside a coroutine the compiler may
  // reuse a thread id read before a co_await (clang does), after the coroutine changed threads.
  [[gnu::noinline]] void upload(std::size_t bytes) {
    if (std::this_thread::get_id() != owner_) {
      wrong_thread_.fetch_add(1);
      return;
    }
    uploaded_bytes_ += bytes;  // only the owner thread gets here
    ++uploads_;
  }
  [[nodiscard]] std::size_t uploads() const { return uploads_; }
  [[nodiscard]] std::size_t uploaded_bytes() const { return uploaded_bytes_; }
  [[nodiscard]] int wrong_thread() const { return wrong_thread_.load(); }

 private:
  std::thread::id owner_ = std::this_thread::get_id();
  std::size_t uploads_ = 0;
  std::size_t uploaded_bytes_ = 0;
  std::atomic<int> wrong_thread_{0};
};

constexpr int kFrames = 30;
constexpr int kMeshesPerFrame = 16;
constexpr int kTextures = 8;

/// One mesh: a few thousand floats computed on a worker.
std::vector<float> build_mesh(int frame, int mesh) {
  std::vector<float> vertices(3000);
  std::iota(vertices.begin(), vertices.end(), static_cast<float>(frame * 100 + mesh));
  return vertices;
}

}  // namespace

int main() {
  fiberjob::Config config;
  config.worker_count = 2;
  config.attachable_threads = 1;
  fiberjob::JobSystem js(config);
  fiberjob::AttachedWorker main_thread(js);  // this thread joins as the upload thread
  const fiberjob::AttachedThread main_handle = main_thread;
  GraphicsContext gl;

  // Pattern 2, a coroutine: a streamer decodes textures on workers and hops onto the main
  // thread for each upload, then back to the workers for the next decode.
  fiberjob::Counter streaming;
  js.run(streaming, [&, main_handle](fiberjob::Context& ctx) -> fiberjob::Task<> {
    for (int texture = 0; texture < kTextures; ++texture) {
      const std::vector<float> pixels = build_mesh(-1, texture);  // "decode", on a worker
      co_await ctx.resume_on(main_handle);                        // on the main thread now
      gl.upload(pixels.size() * sizeof(float));
      co_await ctx.resume_on_any();  // off the main thread again, for the next decode
    }
  });

  std::size_t ran_on_main = 0;
  for (int frame = 0; frame < kFrames; ++frame) {
    // Pattern 1, plain jobs: each mesh is built on a worker, which then queues its upload as
    // a job only the main thread runs. The frame's counter covers builds and uploads.
    fiberjob::Counter frame_work;
    for (int mesh = 0; mesh < kMeshesPerFrame; ++mesh) {
      js.run(frame_work, [&, main_handle, frame, mesh] {
        auto vertices = std::make_shared<std::vector<float>>(build_mesh(frame, mesh));
        main_handle.spawn(frame_work,
                          [&gl, vertices] { gl.upload(vertices->size() * sizeof(float)); });
      });
    }
    // The frame loop: upload what is ready, "render", until this frame's meshes are all in.
    // (A game would present here and start the next frame's simulation meanwhile.)
    while (!frame_work.done()) {
      ran_on_main += main_thread.run_pending();
      std::this_thread::yield();
    }
    js.wait(frame_work);  // rethrows a job's exception, if any
  }
  // The streamer may still be going: keep running the frame loop until it is done.
  while (!streaming.done()) {
    ran_on_main += main_thread.run_pending();
    std::this_thread::yield();
  }
  js.wait(streaming);

  const std::size_t expected = kFrames * kMeshesPerFrame + kTextures;
  fmt::print("uploads on the main thread: {} ({} KiB), from a wrong thread: {}\n", gl.uploads(),
             gl.uploaded_bytes() / 1024, gl.wrong_thread());
  fmt::print("affine jobs and hops run by run_pending: {}\n", ran_on_main);
  const bool ok = gl.uploads() == expected && gl.wrong_thread() == 0 && ran_on_main == expected;
  fmt::print("{}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
