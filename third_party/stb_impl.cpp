// The one translation unit that compiles stb_image's and stb_image_write's implementations
// (headers from Debian's libstb-dev; nothing copied).
//
// Only the formats caf reads (image_io.h: .png .jpg .jpeg .bmp .tga) are compiled in. The others'
// parsers were reachable from any file's bytes, whatever its extension, and they are where stb 2.27
// is weakest: CI's fuzz_image found a signed overflow in the PNM header reader (a 33-digit width,
// tests/fuzz/corpus/fuzz_image/regress_pnm_width_overflow.ppm). Such files are now refused as
// "unknown image type".
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
#include <stb_image.h>
#include <stb_image_write.h>
