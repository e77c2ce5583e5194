# ctest helper: runs COMMAND (a ;-list), and passes only if it exits 0 AND its output
# (stdout + stderr) matches EXPECT (a regular expression). Usage:
#   cmake -DCOMMAND="prog;arg1;arg2" -DEXPECT="regex" -P ExpectOutput.cmake
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE result OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message("${out}${err}")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "expected exit 0, got ${result}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "expected output matching '${EXPECT}'")
endif()
