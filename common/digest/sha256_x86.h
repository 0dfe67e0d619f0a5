#pragma once

// SHA-256 block compression on x86's SHA extensions (SHA-NI), for the edge's digests: Debian's
// wolfSSL is built without its assembly, and its C code hashes at a sixth of this speed
// (docs/performance.md, "Models"). Pure functions; thread-safe.

#include <cstddef>
#include <cstdint>

namespace ep::digest::x86 {

// Whether this CPU has the SHA extensions with SSSE3 and SSE4.1 (checked once with CPUID).
// Always false on other architectures.
bool shaExtensionsAvailable();

// Runs SHA-256's compression over `blocks` 64-byte blocks at `data`, updating `state` (H0..H7).
// Only when shaExtensionsAvailable().
void compressBlocks(uint32_t state[8], const unsigned char* data, size_t blocks);

}  // namespace ep::digest::x86
