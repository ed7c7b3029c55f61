# Runs fota-sim powercut and checks both its exit status and its last line.
# An exit status alone is not enough: a crash also exits non-zero, and the
# self-check must fail for the reason it was built to show.
#   -DSIM=<fota-sim> -DMODE=proof   the default proof: exit 0, B = U = 0
#   -DMODE=bugs                      each injected bug: exit 1 and B or U > 0

function(run_sim expect_rc last_re)
  execute_process(COMMAND ${SIM} powercut ${ARGN}
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  string(STRIP "${out}" out)
  list(JOIN ARGN " " args)
  string(REGEX REPLACE "^.*\n" "" last "${out}")
  message("$ fota-sim powercut ${args}\n${err}${out}\n(exit ${rc})")
  if(NOT rc STREQUAL "${expect_rc}")
    message(FATAL_ERROR "expected exit status ${expect_rc}, got ${rc}")
  endif()
  if(NOT last MATCHES "${last_re}")
    message(FATAL_ERROR "last line '${last}' does not match '${last_re}'")
  endif()
endfunction()

set(counts "^cut points: [1-9][0-9]*, torn writes: [1-9][0-9]*, random runs: [0-9]+")
if(MODE STREQUAL "proof")
  run_sim(0 "${counts}, bricked: 0, unsigned boots: 0$")
elseif(MODE STREQUAL "bugs")
  run_sim(1 "${counts}, bricked: [1-9][0-9]*, unsigned boots: [0-9]+$"
          --inject-bug overwrite-active --random-runs 20)
  run_sim(1 "${counts}, bricked: [0-9]+, unsigned boots: [1-9][0-9]*$"
          --inject-bug state-in-place --random-runs 20)
else()
  message(FATAL_ERROR "MODE must be proof or bugs")
endif()
