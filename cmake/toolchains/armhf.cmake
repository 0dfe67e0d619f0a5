# 32-bit ARMv7 with hardware floating point (Debian's armhf): Raspberry Pi 2/3 with a 32-bit OS,
# most 32-bit industrial gateways.
set(EP_CROSS_TRIPLE arm-linux-gnueabihf)
set(EP_CROSS_PROCESSOR armv7l)
set(EP_CROSS_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
