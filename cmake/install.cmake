# `cmake --install build --prefix P` installs radix's library core for other CMake projects:
#   find_package(radix CONFIG REQUIRED)   # with CMAKE_PREFIX_PATH=P
#   target_link_libraries(app PRIVATE radix::radix_service)
# The public API is service/*.h (docs/library.md); the other headers come along because the
# static libraries behind it are installed too, and advanced users may call the engine or model.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(radix_library_targets radix_core radix_tokenizer radix_backend_api radix_backend_cpu
    radix_backend radix_model radix_prefix_index radix_prefix_cache radix_engine radix_model_runner
    radix_service)
if(TARGET radix_backend_cuda)
  list(APPEND radix_library_targets radix_backend_cuda)
endif()

# In the build tree the headers are found under src/; installed, under include/.
foreach(target IN LISTS radix_library_targets)
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(dirs)
    list(REMOVE_ITEM dirs "${PROJECT_SOURCE_DIR}/src")
  else()
    set(dirs "")
  endif()
  list(APPEND dirs "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>"
       "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${dirs}")
endforeach()

install(TARGETS ${radix_library_targets} EXPORT radixTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(dir core tokenizer backend model cache engine service)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/${dir} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.cuh")
endforeach()
install(EXPORT radixTargets NAMESPACE radix:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/radix)

set(RADIX_BUILT_WITH_CUDA ${RADIX_CUDA})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/radixConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/radixConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/radix)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/radixConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/radixConfig.cmake ${PROJECT_BINARY_DIR}/radixConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/radix)
