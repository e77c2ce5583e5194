// Code address -> function name for await chains: dladdr finds the module, its ELF ".symtab"
// (read from the file with mmap) the function, abi::__cxa_demangle the readable name.

#include "symbolize.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace fiberjob::detail {
namespace {

/// A read-only mapping of a whole file (empty when it could not be opened or mapped).
class MappedFile {
 public:
  explicit MappedFile(const char* path) noexcept {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      void* data =
          ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (data != MAP_FAILED) {
        data_ = static_cast<const unsigned char*>(data);
        size_ = static_cast<std::size_t>(st.st_size);
      }
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  /// `count` objects of type T at byte `offset`, or nullptr when they lie outside the file.
  template <class T>
  const T* at(std::uint64_t offset, std::uint64_t count = 1) const noexcept {
    if (data_ == nullptr || offset > size_ || count > (size_ - offset) / sizeof(T)) return nullptr;
    return reinterpret_cast<const T*>(data_ + offset);
  }

 private:
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

/// The mangled name of the STT_FUNC symbol of `file`'s .symtab that covers `offset` (a
/// link-time address), or nullptr.
const char* function_symbol(const MappedFile& file, std::uint64_t offset, bool* is_exec) noexcept {
  const auto* header = file.at<Elf64_Ehdr>(0);
  if (header == nullptr || std::memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 ||
      header->e_ident[EI_CLASS] != ELFCLASS64) {
    return nullptr;
  }
  *is_exec = header->e_type == ET_EXEC;
  const auto* sections = file.at<Elf64_Shdr>(header->e_shoff, header->e_shnum);
  if (sections == nullptr) return nullptr;
  for (unsigned i = 0; i < header->e_shnum; ++i) {
    const Elf64_Shdr& table = sections[i];
    if (table.sh_type != SHT_SYMTAB || table.sh_link >= header->e_shnum) continue;
    const Elf64_Shdr& names = sections[table.sh_link];
    const auto* symbols = file.at<Elf64_Sym>(table.sh_offset, table.sh_size / sizeof(Elf64_Sym));
    const auto* strings = file.at<char>(names.sh_offset, names.sh_size);
    if (symbols == nullptr || strings == nullptr) return nullptr;
    for (std::uint64_t s = 0; s < table.sh_size / sizeof(Elf64_Sym); ++s) {
      const Elf64_Sym& symbol = symbols[s];
      if (ELF64_ST_TYPE(symbol.st_info) != STT_FUNC || symbol.st_name >= names.sh_size) continue;
      if (offset >= symbol.st_value && offset < symbol.st_value + symbol.st_size) {
        return strings + symbol.st_name;
      }
    }
  }
  return nullptr;
}

/// g++ names a coroutine's resume function after the coroutine, with one parameter, its frame:
/// "ns::f(ns::f(int)::_Z...Frame*)". Returns the coroutine's own "ns::f(int)" for such a name,
/// else `name`.
std::string without_frame_parameter(const std::string& name) {
  const std::string frame_suffix = ".Frame*)";
  const std::size_t frame = name.rfind("::_Z");
  if (frame == std::string::npos || name.size() < frame_suffix.size() ||
      name.compare(name.size() - frame_suffix.size(), frame_suffix.size(), frame_suffix) != 0) {
    return name;
  }
  // The parameter list opens at the first '(' followed by the name before it.
  for (std::size_t open = name.find('(', 1); open != std::string::npos && open < frame;
       open = name.find('(', open + 1)) {
    if (name.compare(open + 1, open, name, 0, open) == 0) {
      return name.substr(open + 1, frame - open - 1);
    }
  }
  return name;
}

/// `mangled` demangled, without the suffix g++ ("[clone .actor]") or clang++ ("(.resume)")
/// gives a coroutine's resume function.
std::string readable(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free);
  std::string name = status == 0 && demangled ? demangled.get() : mangled;
  for (const char* suffix : {" [clone .actor]", " (.resume)", " [clone .resume]"}) {
    const std::size_t at = name.rfind(suffix);
    if (at != std::string::npos && at + std::strlen(suffix) == name.size()) name.resize(at);
  }
  return without_frame_parameter(name);
}

}  // namespace

CodeSymbol symbolize(const void* address) {
  CodeSymbol result{"??", "??", reinterpret_cast<std::uintptr_t>(address)};
  Dl_info info{};
  if (::dladdr(address, &info) == 0 || info.dli_fname == nullptr) return result;
  result.module = info.dli_fname;
  const auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  result.offset = reinterpret_cast<std::uintptr_t>(address) - base;
  // dladdr names the main program as it was started (argv[0], perhaps relative to a directory
  // left since): read the running file itself.
  const bool main_program = result.module.empty() || result.module == program_invocation_name;
  const MappedFile file(main_program ? "/proc/self/exe" : info.dli_fname);
  bool is_exec = false;
  const char* name = function_symbol(file, result.offset, &is_exec);
  if (is_exec) {  // a non-PIE executable: symbols hold absolute addresses
    name = function_symbol(file, reinterpret_cast<std::uintptr_t>(address), &is_exec);
  }
  if (name == nullptr && info.dli_sname != nullptr) name = info.dli_sname;
  if (name != nullptr) result.function = readable(name);
  return result;
}

}  // namespace fiberjob::detail
