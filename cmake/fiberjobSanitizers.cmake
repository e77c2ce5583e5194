# Sanitizer builds apply to everything in the tree (library, tests, samples).
if(FIBERJOB_ASAN)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang 14's -fsanitize=function cannot compile some C++20 coroutines (Asio's awaitable):
    # "Cannot represent a difference across sections" (fixed in later LLVM). The other UBSan
    # checks stay on.
    add_compile_options(-fno-sanitize=function)
  endif()
endif()
if(FIBERJOB_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
