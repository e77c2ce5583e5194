# FindConcurrentQueue: moodycamel::ConcurrentQueue (Debian libconcurrentqueue-dev) ships no CMake
# config, so this module finds the header and wraps it in the imported INTERFACE target
# concurrentqueue::concurrentqueue. Installed next to fiberjobConfig.cmake, so consumers of an
# installed fiberjob resolve it with find_dependency(ConcurrentQueue).
find_path(ConcurrentQueue_INCLUDE_DIR concurrentqueue/concurrentqueue.h
          DOC "Directory holding concurrentqueue/concurrentqueue.h")
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ConcurrentQueue
  REQUIRED_VARS ConcurrentQueue_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "run scripts/install-deps.sh (Debian package libconcurrentqueue-dev)")
if(ConcurrentQueue_FOUND AND NOT TARGET concurrentqueue::concurrentqueue)
  add_library(concurrentqueue::concurrentqueue INTERFACE IMPORTED)
  set_target_properties(concurrentqueue::concurrentqueue PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${ConcurrentQueue_INCLUDE_DIR}")
endif()
mark_as_advanced(ConcurrentQueue_INCLUDE_DIR)
