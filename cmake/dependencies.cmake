# Every third-party library comes from a Debian package (scripts/deps.txt; scripts/setup.sh installs
# them). On the GPU machine they are unpacked under a private prefix passed as CMAKE_PREFIX_PATH.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3.10 CONFIG REQUIRED)
if(RADIX_TESTS)
  find_package(GTest REQUIRED)
endif()

# radix_find_library(TARGET HEADER LIB... ) -> imported target radix::TARGET, or a clear error.
function(radix_find_library target header)
  find_path(${target}_INCLUDE_DIR ${header})
  find_library(${target}_LIBRARY NAMES ${ARGN})
  if(NOT ${target}_INCLUDE_DIR OR NOT ${target}_LIBRARY)
    message(FATAL_ERROR "radix needs ${target} (${header}, lib ${ARGN}); run scripts/setup.sh "
                        "or install the package listed in scripts/deps.txt")
  endif()
  add_library(radix::${target} UNKNOWN IMPORTED GLOBAL)
  set_target_properties(radix::${target} PROPERTIES IMPORTED_LOCATION "${${target}_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${${target}_INCLUDE_DIR}")
endfunction()

radix_find_library(pcre2 pcre2.h pcre2-8)
target_compile_definitions(radix::pcre2 INTERFACE PCRE2_CODE_UNIT_WIDTH=8)
radix_find_library(utf8proc utf8proc.h utf8proc)
radix_find_library(openblas cblas.h openblas)
# Boost.Beast and Boost.Asio (header-only in 1.74; Boost.System too) carry the HTTP front.
find_package(Boost 1.74 REQUIRED)
if(NOT TARGET Boost::headers)
  message(FATAL_ERROR "radix needs the Boost headers (libboost-dev, scripts/deps.txt)")
endif()
