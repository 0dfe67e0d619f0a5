// stb_image's implementation (libstb-dev ships the header only): PNG and JPEG decoding for the
// classifier, nothing else compiled in.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#include <stb/stb_image.h>
