# Cross build for 64-bit ARM Linux (aarch64) on a Debian 12 x86-64 host: Debian's
# g++-aarch64-linux-gnu, the compiled dependencies as multiarch arm64 packages
# (libboost-context-dev:arm64, libfmt-dev:arm64 in /usr/lib/aarch64-linux-gnu) and the
# architecture-independent header-only ones from /usr/include. Tests run under qemu-user.
# `scripts/install-deps.sh --aarch64` installs all of it; scripts/test-aarch64.sh uses it through
# the `aarch64` preset.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)

# Multiarch: find_package and find_library look in lib/aarch64-linux-gnu under the host's
# prefixes (the sysroot is /), never in the host's lib/x86_64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# ctest (and any test that starts a child process, see tests/CMakeLists.txt) runs the target's
# programs through user-mode qemu. No binfmt_misc registration is needed, so this works in a
# container without privileges. No `-L /usr/aarch64-linux-gnu`: the programs load the multiarch
# arm64 libraries (libboost_context, libfmt, and with them libc6:arm64's libc and libstdc++)
# from /lib/aarch64-linux-gnu, so they must also start with libc6:arm64's dynamic loader,
# /lib/ld-linux-aarch64.so.1. -L would give them the cross compiler's own loader, another build
# of glibc: a loader and a libc.so.6 of different builds share private state, and pthread_create
# then loops forever on a corrupted thread-stack list.
find_program(FIBERJOB_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static
             DOC "user-mode qemu for aarch64 (Debian package qemu-user)")
if(FIBERJOB_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FIBERJOB_QEMU_AARCH64})
endif()
