# The three header-only dependencies, from Debian's libstb-dev, doctest-dev and
# nlohmann-json3-dev (installed by tools/setup.sh). CAF_DEPS_ROOT points at a folder holding
# copies of the same headers (stb/, doctest/, nlohmann/) for machines without those packages.
set(_caf_dep_hints ${CAF_DEPS_ROOT} $ENV{CAF_DEPS_ROOT} /usr/include /usr/local/include)
find_path(CAF_STB_DIR stb_image.h HINTS ${_caf_dep_hints} PATH_SUFFIXES stb NO_DEFAULT_PATH)
find_path(CAF_DOCTEST_DIR doctest/doctest.h HINTS ${_caf_dep_hints} NO_DEFAULT_PATH)
find_path(CAF_JSON_DIR nlohmann/json.hpp HINTS ${_caf_dep_hints} NO_DEFAULT_PATH)
foreach(_d CAF_STB_DIR CAF_DOCTEST_DIR CAF_JSON_DIR)
  if(NOT ${_d})
    message(FATAL_ERROR "${_d}: header not found. Run tools/setup.sh (apt-get install libstb-dev "
                        "doctest-dev nlohmann-json3-dev) or pass -DCAF_DEPS_ROOT=<folder>.")
  endif()
endforeach()
add_library(caf_stb STATIC ${CMAKE_CURRENT_LIST_DIR}/../stb_impl.cpp)
target_include_directories(caf_stb SYSTEM PUBLIC ${CAF_STB_DIR})
add_library(caf_doctest INTERFACE)
target_include_directories(caf_doctest SYSTEM INTERFACE ${CAF_DOCTEST_DIR})
add_library(caf_json INTERFACE)
target_include_directories(caf_json SYSTEM INTERFACE ${CAF_JSON_DIR})
