// Reads the resident set size from /proc/self/statm without allocating: open/read/close into a
// stack buffer (fopen or an ifstream would call the allocator the frame loop counts).

#include "rss.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>

namespace game {

std::uint64_t resident_kib() noexcept {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t length = ::read(fd, text, sizeof text);
  ::close(fd);
  if (length <= 0) return 0;
  // "size resident shared text lib data dt", in pages: skip the first field.
  const char* const end = text + length;
  const char* p = text;
  while (p != end && *p != ' ') ++p;
  if (p == end) return 0;
  std::uint64_t pages = 0;
  if (std::from_chars(p + 1, end, pages).ec != std::errc{}) return 0;
  const long page_bytes = ::sysconf(_SC_PAGESIZE);
  return page_bytes > 0 ? pages * static_cast<std::uint64_t>(page_bytes) / 1024 : 0;
}

}  // namespace game
