# ctest helper: runs COMMAND_A and COMMAND_B (;-lists); passes only if both exit 0 and the first
# line of each output that matches LINE (a regular expression) is the same, e.g. two runs that
# must reach the same checksum. Usage:
#   cmake -DCOMMAND_A="prog;--x" -DCOMMAND_B="prog;--y" -DLINE="checksum [0-9a-f]+" \
#         -P SameOutputLine.cmake
foreach(run A B)
  execute_process(COMMAND ${COMMAND_${run}} RESULT_VARIABLE result OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "COMMAND_${run}: expected exit 0, got ${result}")
  endif()
  string(REGEX MATCH "${LINE}" line_${run} "${out}")
  if(line_${run} STREQUAL "")
    message(FATAL_ERROR "COMMAND_${run}: no output line matches '${LINE}'")
  endif()
endforeach()
if(NOT line_A STREQUAL line_B)
  message(FATAL_ERROR "'${line_A}' (COMMAND_A) differs from '${line_B}' (COMMAND_B)")
endif()
message("both runs print '${line_A}'")
