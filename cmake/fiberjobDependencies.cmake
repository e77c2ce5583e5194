# Dependencies, all from Debian packages (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS context)
find_package(fmt REQUIRED)  # trace export
find_package(ConcurrentQueue REQUIRED)  # cmake/FindConcurrentQueue.cmake
