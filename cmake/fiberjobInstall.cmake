# cmake --install + find_package(fiberjob CONFIG), with a find_dependency per dependency.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FIBERJOB_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fiberjob)
# The ThreadSanitizer suppressions a program using the library needs (docs/api.md, "Running
# under the sanitizers"); the package names the installed file in fiberjob_TSAN_SUPPRESSIONS.
set(FIBERJOB_DATA_DIR ${CMAKE_INSTALL_DATADIR}/fiberjob)
install(FILES ${PROJECT_SOURCE_DIR}/tests/tsan.supp DESTINATION ${FIBERJOB_DATA_DIR})

install(TARGETS fiberjob EXPORT fiberjobTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/fiberjob
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT fiberjobTargets NAMESPACE fiberjob:: DESTINATION ${FIBERJOB_CMAKE_DIR})
if(FIBERJOB_BUILD_ASIO)
  install(TARGETS fiberjob_asio EXPORT fiberjobAsioTargets)
  install(EXPORT fiberjobAsioTargets NAMESPACE fiberjob:: DESTINATION ${FIBERJOB_CMAKE_DIR})
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindAsio.cmake DESTINATION ${FIBERJOB_CMAKE_DIR})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fiberjobConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/fiberjobConfig.cmake
                              INSTALL_DESTINATION ${FIBERJOB_CMAKE_DIR}
                              PATH_VARS FIBERJOB_DATA_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fiberjobConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fiberjobConfig.cmake
              ${PROJECT_BINARY_DIR}/fiberjobConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FindConcurrentQueue.cmake
        DESTINATION ${FIBERJOB_CMAKE_DIR})
