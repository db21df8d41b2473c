# CLI checks of issue 8 (library groundwork): a hostile user's inputs give a
# clear message and the right exit code. Each command echoes "exit=N".
set(DIGCL_LIB_FILES "${CMAKE_BINARY_DIR}/cli-lib-files")
add_test(NAME cli_lib_make_files
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/cli_lib_files.sh" "${DIGCL_LIB_FILES}")
set_tests_properties(cli_lib_make_files PROPERTIES FIXTURES_SETUP digcl_cli_lib_files
  PASS_REGULAR_EXPRESSION "files written")

# The tiny model the input files are made for: x [1, 1, 2, 2].
set(DIGCL_LIB_TINY "--depth 1 --hidden-size 8 --num-heads 1 --patch-size 2 --input-size 2 --in-channels 1 --num-classes 1 --learn-sigma 0")

function(digcl_lib_test name command regex)
  add_test(NAME ${name} COMMAND sh -c "${command} 2>&1; echo exit=$?" sh "$<TARGET_FILE:digcl_cli>" "${DIGCL_LIB_FILES}"
           ${ARGN})
  set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${regex}"
    FIXTURES_REQUIRED digcl_cli_lib_files)
endfunction()

# 1. --output naming an input, also through another spelling or a link: exit 2, both flags named.
digcl_lib_test(cli_lib_forward_output_is_ckpt
  "\"$1\" forward --model DiG-S/2 --ckpt \"$2/bad_entry.st\" --inputs \"$2/x_nan.st\" --output \"$2/bad_entry.st\""
  "--output .*bad_entry.st is the same file as --ckpt .*exit=2")
digcl_lib_test(cli_lib_forward_output_is_inputs_spelled_otherwise
  "\"$1\" forward --model DiG-S/2 --ckpt \"$2/bad_entry.st\" --inputs \"$2/x_nan.st\" --output \"$2/./x_nan.st\""
  "is the same file as --inputs .*exit=2")
digcl_lib_test(cli_lib_forward_output_is_link_to_ckpt
  "ln -sf bad_entry.st \"$2/link.st\" && \"$1\" forward --model DiG-S/2 --ckpt \"$2/bad_entry.st\" --inputs \"$2/x_nan.st\" --output \"$2/link.st\"; cmp -s \"$2/bad_entry.st\" \"$2/link.st\" && echo untouched"
  "is the same file as --ckpt .*untouched")
# 2. Every numeric field of bench gemm --shape is validated.
digcl_lib_test(cli_lib_bench_gemm_negative_shape "\"$1\" bench gemm --shape -1,-1,-1,0,0"
  "field M of '-1,-1,-1,0,0' is not valid.*exit=2")
digcl_lib_test(cli_lib_bench_gemm_zero_k "\"$1\" bench gemm --shape 8,8,0,0,0" "field K .*exit=2")
digcl_lib_test(cli_lib_bench_gemm_bad_transpose "\"$1\" bench gemm --shape 8,8,8,2,0" "field transpose_a .*exit=2")
# 3. Sizes the kernels cannot run are refused at config time, naming the limit.
digcl_lib_test(cli_lib_info_huge_patch "\"$1\" info --model DiG-S/2 --patch-size 16384 --input-size 16384"
  "patch_size 16384 gives .*32-bit indices.*exit=2")
digcl_lib_test(cli_lib_info_norm_row_limit "\"$1\" info --model DiG-S/2 --hidden-size 9000 --num-heads 9"
  "hidden_size 9000 is wider than the norm kernels' rows \\(at most 8192.*exit=2")
digcl_lib_test(cli_lib_info_batch_limit "\"$1\" info --model DiG-S/2 --batch 1000000"
  "at most batch 4095.*--batch.*exit=2")
# 6. Non-finite or integer x is refused before the device is opened.
digcl_lib_test(cli_lib_forward_nan_x
  "\"$1\" forward ${DIGCL_LIB_TINY} --ckpt \"$2/bad_entry.st\" --inputs \"$2/x_nan.st\" --output \"$2/out.st\""
  "tensor 'x' holds 1 non-finite value \\(NaN or Inf\\) of 4.*exit=1")
digcl_lib_test(cli_lib_forward_integer_x
  "\"$1\" forward ${DIGCL_LIB_TINY} --ckpt \"$2/bad_entry.st\" --inputs \"$2/x_int.st\" --output \"$2/out.st\""
  "tensor 'x' has dtype I32, expected F32.*exit=1")
set_tests_properties(cli_lib_forward_nan_x cli_lib_forward_integer_x PROPERTIES
  FAIL_REGULAR_EXPRESSION "x_(nan|int).st: [^\n]*x_(nan|int).st:")
# 7. info --ckpt checks every entry against the config.
digcl_lib_test(cli_lib_info_corrupt_entry "\"$1\" info --ckpt \"$2/bad_entry.st\""
  "tensor 'pos_embed' has shape \\[1\\], expected \\[1, 1, 8\\].*exit=1")
# 8. Header errors are the parser's, not "no dig.config".
digcl_lib_test(cli_lib_info_duplicate_metadata "\"$1\" info --ckpt \"$2/dup_meta.st\"" "__metadata__ appears twice.*exit=1")
digcl_lib_test(cli_lib_info_trailing_bytes "\"$1\" info --ckpt \"$2/trailing.st\"" "followed only by spaces.*exit=1")
digcl_lib_test(cli_lib_info_bad_utf8 "\"$1\" info --ckpt \"$2/bad_utf8.st\"" "not valid UTF-8.*exit=1")
# 10. Clear messages.
digcl_lib_test(cli_lib_forward_empty_output
  "\"$1\" forward --model DiG-S/2 --ckpt \"$2/bad_entry.st\" --inputs \"$2/x_nan.st\" --output ''"
  "--output needs a file name, got an empty string.*exit=2")
digcl_lib_test(cli_lib_info_ckpt_directory "\"$1\" info --ckpt \"$2\"" "is a directory, expected a safetensors file.*exit=1")
digcl_lib_test(cli_lib_info_long_path
  "\"$1\" info --ckpt \"$2/$(printf 'long-directory-name-%.0s/' $(seq 60))missing.st\""
  "missing.st: cannot open: No such file or directory.*exit=1")
digcl_lib_test(cli_lib_huge_device_index "\"$1\" --device 99999999999:0 bench gemm"
  "no OpenCL device 99999999999:0.*exit=2")
