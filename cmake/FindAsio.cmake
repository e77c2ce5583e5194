# FindAsio: standalone Asio (Debian libasio-dev, header only, no CMake config). Defines the
# imported INTERFACE target Asio::asio. Installed with fiberjob for the `asio` component.
find_path(Asio_INCLUDE_DIR asio.hpp DOC "Directory holding standalone asio.hpp")
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio REQUIRED_VARS Asio_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "run scripts/install-deps.sh (Debian package libasio-dev)")
if(Asio_FOUND AND NOT TARGET Asio::asio)
  find_package(Threads REQUIRED)
  add_library(Asio::asio INTERFACE IMPORTED)
  set_target_properties(Asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${Asio_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
mark_as_advanced(Asio_INCLUDE_DIR)
