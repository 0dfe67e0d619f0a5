# 64-bit ARM (aarch64): Raspberry Pi 3/4/5 with a 64-bit OS, Jetson, ARM servers.
set(EP_CROSS_TRIPLE aarch64-linux-gnu)
set(EP_CROSS_PROCESSOR aarch64)
set(EP_CROSS_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
