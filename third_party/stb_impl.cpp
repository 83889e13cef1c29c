// The one translation unit that compiles stb_image's and stb_image_write's implementations
// (headers from Debian's libstb-dev; nothing copied).
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#include <stb_image_write.h>
