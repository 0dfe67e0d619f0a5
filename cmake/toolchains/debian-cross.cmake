# Cross compilation with Debian's cross toolchains (crossbuild-essential-ARCH) against a sysroot
# of Debian 12 packages of the target architecture (scripts/cross-sysroot.sh makes it).
# Included by the per-architecture files beside it, which set EP_CROSS_TRIPLE, EP_CROSS_PROCESSOR
# and EP_CROSS_QEMU. The sysroot comes from -DEP_SYSROOT=DIR or the EP_SYSROOT environment
# variable (scripts/build.sh --arch sets it).
#
# Programs (protoc, grpc_cpp_plugin) are the build host's; headers, libraries, CMake packages
# and pkg-config files come only from the sysroot, so nothing of the host's architecture can be
# linked by mistake.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${EP_CROSS_PROCESSOR})

if(NOT EP_SYSROOT)
  set(EP_SYSROOT "$ENV{EP_SYSROOT}")
endif()
if(NOT EP_SYSROOT OR NOT EXISTS "${EP_SYSROOT}/usr/lib/${EP_CROSS_TRIPLE}")
  message(FATAL_ERROR "EP_SYSROOT: '${EP_SYSROOT}' is not a sysroot for ${EP_CROSS_TRIPLE} "
                      "(make one with scripts/cross-sysroot.sh)")
endif()
# try_compile projects see the same sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EP_SYSROOT)

set(CMAKE_C_COMPILER ${EP_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EP_CROSS_TRIPLE}-g++)
set(CMAKE_SYSROOT "${EP_SYSROOT}")
# GCC notes on ARM that std::map iterators are passed differently than by GCC < 7.1: nothing
# here links code built by such compilers. GCC 12 also sees Boost.Beast's inflate tables indexed
# out of bounds when it inlines them for 32-bit ARM (a known false positive): a warning, never an
# error.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi -Wno-error=array-bounds")
set(CMAKE_FIND_ROOT_PATH "${EP_SYSROOT}")
set(CMAKE_LIBRARY_ARCHITECTURE ${EP_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads only the sysroot's .pc files and prefixes their paths with it.
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${EP_SYSROOT}/usr/lib/${EP_CROSS_TRIPLE}/pkgconfig:${EP_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${EP_SYSROOT}")

# Target programs run under qemu-user with the sysroot's loader and libraries.
find_program(EP_CROSS_QEMU_PROGRAM ${EP_CROSS_QEMU})
if(EP_CROSS_QEMU_PROGRAM)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EP_CROSS_QEMU_PROGRAM} -L "${EP_SYSROOT}")
endif()
