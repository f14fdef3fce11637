# Every third-party library comes from a Debian package (scripts/setup.sh installs them). On the GPU
# machine they are unpacked under a private prefix: pass it as CMAKE_PREFIX_PATH.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3.10 CONFIG REQUIRED)
if(RADIX_TESTS)
  find_package(GTest REQUIRED)
endif()
