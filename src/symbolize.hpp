#pragma once
// Names code addresses for await chains (await_chain.cpp): the module (dladdr) and the function
// from the module's ELF symbol table, demangled.

#include <cstdint>
#include <string>

namespace fiberjob::detail {

/// What is known about one code address.
struct CodeSymbol {
  /// The demangled function name without the coroutine clone suffix ("[clone .actor]",
  /// "(.resume)"), or "??" when the module has no symbol table entry for it.
  std::string function;
  /// The file of the module (executable or shared object) that holds the address, or "??".
  std::string module;
  /// The address minus the module's load address: what addr2line takes for that module.
  std::uintptr_t offset = 0;
};

/// Names `address` (a code address of this process). Reads the module's ".symtab" from its
/// file (dladdr's ".dynsym" lacks the coroutines' local resume functions). Any thread; slow
/// (maps the file): for diagnostics only. Errors: std::bad_alloc.
CodeSymbol symbolize(const void* address);

}  // namespace fiberjob::detail
