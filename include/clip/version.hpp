#pragma once
// clip's version; CMakeLists.txt reads it from here, so there is one place to change it.

#define CLIP_VERSION_MAJOR 0
#define CLIP_VERSION_MINOR 2
#define CLIP_VERSION_PATCH 0
#define CLIP_VERSION_STRING "0.2.0"
