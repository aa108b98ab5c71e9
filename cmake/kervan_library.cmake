# kervan_library(NAME FOLDER SOURCES... [DEPS targets...] [PRIVATE_DEPS targets...])
#
# One library per source folder. Headers are included by their path from the repository root
# ("core/tensor.h", "datasets/format/token_shard.h"), but a target sees only the headers of its
# own folder and of the kervan libraries it links (DEPS, transitively): its include root is a
# folder of symlinks under the build tree, build/include/NAME/FOLDER/*.h, holding the headers
# directly in FOLDER (subfolders are libraries of their own). An include across an arrow that
# the design forbids (core -> parallel, datasets -> MPI, loader -> prepare) therefore fails to
# compile instead of passing review by convention.
function(kervan_library name folder)
  cmake_parse_arguments(K "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(root ${PROJECT_BINARY_DIR}/include/${name})
  file(MAKE_DIRECTORY ${root}/${folder})
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${folder}/*.h ${PROJECT_SOURCE_DIR}/${folder}/*.cuh
       ${PROJECT_SOURCE_DIR}/${folder}/*.inc)
  foreach(h ${headers})
    get_filename_component(base ${h} NAME)
    file(CREATE_LINK ${h} ${root}/${folder}/${base} SYMBOLIC)
  endforeach()
  if(K_SOURCES)
    add_library(${name} ${K_SOURCES})
    target_include_directories(${name} PUBLIC ${root})
    target_link_libraries(${name} PUBLIC ${K_DEPS} PRIVATE ${K_PRIVATE_DEPS})
  else()  # headers only
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${root})
    target_link_libraries(${name} INTERFACE ${K_DEPS})
  endif()
endfunction()
