# `digcl bench data` and the data layer through the real binary (issue 9).
# Each command's exit code is echoed as "exit=N" so the regular expression checks it too.
set(DIGCL_BIN "$<TARGET_FILE:digcl_cli>") # also set by cli_tests.cmake, which may come later

add_test(NAME cli_bench_data_help COMMAND ${DIGCL_BIN} bench data --help)
set_tests_properties(cli_bench_data_help PROPERTIES PASS_REGULAR_EXPRESSION
  "digcl bench data --data SPEC .*--skip-bad-images")

add_test(NAME cli_bench_data_missing_data_exits_2
  COMMAND sh -c "\"$1\" bench data --workers 1 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_bench_data_missing_data_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION
  "missing --data SPEC.*exit=2")

add_test(NAME cli_bench_data_unknown_flag_exits_2
  COMMAND sh -c "\"$1\" bench data --data fashion-mnist --bogus 2>&1; echo exit=$?" sh ${DIGCL_BIN})
set_tests_properties(cli_bench_data_unknown_flag_exits_2 PROPERTIES PASS_REGULAR_EXPRESSION "exit=2")

add_test(NAME cli_bench_data_bad_folder_exits_1
  COMMAND sh -c "\"$1\" bench data --data /nonexistent/digcl-images --image-size 32 2>&1; echo exit=$?"
          sh ${DIGCL_BIN})
set_tests_properties(cli_bench_data_bad_folder_exits_1 PROPERTIES PASS_REGULAR_EXPRESSION
  "/nonexistent/digcl-images: not a folder.*exit=1")

# A corrupt image fails the benchmark as it would fail training, naming the file;
# --skip-bad-images skips it with a warning and a count.
set(DIGCL_BAD_IMAGES "${CMAKE_BINARY_DIR}/cli-data-bad-images")
add_test(NAME cli_bench_data_corrupt_image_exits_1
  COMMAND sh -c "test -n \"$1\" && rm -rf \"$2\" && mkdir -p \"$2/a\" \"$2/b\" && cp \"$3/odd_67x45.png\" \"$2/a/1.png\" && cp \"$3/photo_257x193.jpg\" \"$2/b/2.jpg\" && head -c 300 \"$3/photo_257x193.jpg\" > \"$2/b/3.jpg\" && \"$1\" bench data --data \"$2\" --image-size 16 --batch 3 --seconds 0.1 --workers 1 2>&1; echo exit=$?"
          sh ${DIGCL_BIN} "${DIGCL_BAD_IMAGES}" "${CMAKE_CURRENT_SOURCE_DIR}/reference/crop")
set_tests_properties(cli_bench_data_corrupt_image_exits_1 PROPERTIES PASS_REGULAR_EXPRESSION
  "b/3.jpg: JPEG: .*exit=1" FIXTURES_SETUP digcl_bad_images)
add_test(NAME cli_bench_data_skip_bad_images
  COMMAND sh -c "\"$1\" bench data --data \"$2\" --image-size 16 --batch 2 --seconds 0.1 --workers 1 --skip-bad-images 2>&1; echo exit=$?"
          sh ${DIGCL_BIN} "${DIGCL_BAD_IMAGES}")
set_tests_properties(cli_bench_data_skip_bad_images PROPERTIES PASS_REGULAR_EXPRESSION
  "b/3.jpg: JPEG: .*skipped.*images/s.*digcl bench data: 1 bad files skipped.*exit=0" FIXTURES_REQUIRED digcl_bad_images)

# ADM's centre crop against the installed PIL: fresh fixtures, then the C comparison.
find_program(DIGCL_PIL_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(DIGCL_PIL_PYTHON)
  execute_process(COMMAND "${DIGCL_PIL_PYTHON}" -c "import PIL, numpy"
                  RESULT_VARIABLE DIGCL_PIL_STATUS OUTPUT_QUIET ERROR_QUIET)
endif()
if(DIGCL_PIL_PYTHON AND DIGCL_PIL_STATUS EQUAL 0)
  add_test(NAME data_crop_pil
    COMMAND sh -c "\"$1\" \"$2\" \"$3\" && \"$1\" \"$2\" --check \"$4\" && DIGCL_CROP_DIR=\"$3\" \"$5\""
            sh "${DIGCL_PIL_PYTHON}" "${CMAKE_CURRENT_SOURCE_DIR}/reference/crop_reference.py"
            "${CMAKE_BINARY_DIR}/crop-pil" "${CMAKE_CURRENT_SOURCE_DIR}/reference/crop"
            "$<TARGET_FILE:test_data_images>")
  set_tests_properties(data_crop_pil PROPERTIES WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}" TIMEOUT 120
    PASS_REGULAR_EXPRESSION "0 differ.*PASSED")
else()
  message(STATUS "digcl: PIL not importable by /usr/bin/python3; data_crop_pil skipped")
endif()
