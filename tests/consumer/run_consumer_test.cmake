# ctest driver: install clip from the build tree into a scratch prefix, then configure, build and
# run tests/consumer against it with find_package(clip CONFIG REQUIRED).
foreach(variable CLIP_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "pass -D${variable}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer test: ${step} failed:\n${output}")
  endif()
endfunction()

run(install "${CMAKE_COMMAND}" --install "${CLIP_BINARY_DIR}" --prefix "${prefix}")
run(configure "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release)
run(build "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
run(run "${WORK_DIR}/build/consumer" "${WORK_DIR}/roundtrip.safetensors")
message(STATUS "consumer test: installed package found, built and ran")
