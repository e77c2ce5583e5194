# Installs the fiberjob build tree into a scratch prefix, then configures, builds and runs the
# consumer project against it: proves cmake --install + find_package(fiberjob CONFIG) work.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer test: '${ARGV}' failed (${result})")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${FIBERJOB_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
# A cross build (TOOLCHAIN_FILE set) builds the consumer with the same toolchain file and runs
# it through the same EMULATOR as the tests.
if(TOOLCHAIN_FILE)
  set(compiler -DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE})
else()
  set(compiler -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix ${compiler} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${EMULATOR} ${WORK_DIR}/build/consumer)
