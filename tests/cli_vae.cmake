# `digcl decode` usage errors (exit 2) and a decode through the committed TAESD fixture.
add_test(NAME cli_decode_usage COMMAND digcl_cli decode)
set_tests_properties(cli_decode_usage PROPERTIES WILL_FAIL TRUE)
add_test(NAME cli_decode_taesd
         COMMAND digcl_cli decode --taesd
                 "${CMAKE_SOURCE_DIR}/tests/reference/fixtures_committed/vae/taesd/weights.safetensors"
                 "${CMAKE_SOURCE_DIR}/tests/reference/fixtures_committed/vae/taesd/io.safetensors"
                 --tensor latents_8 -o "${CMAKE_BINARY_DIR}/cli_decode_taesd.ppm")
set_tests_properties(cli_decode_taesd PROPERTIES
  ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/test-kernel-cache"
  FAIL_REGULAR_EXPRESSION "error")

# PNG output: a grid (2 images: one row of two, 2 px padding: 134 x 68) and one file per image.
add_test(NAME cli_decode_kl_png
         COMMAND sh -c "rm -f \"$4\"*.png && \"$1\" decode --vae \"$2\" \"$3\" --tensor latents_8 --scale 1 -o \"$4.png\" &&
                 \"$1\" decode --vae \"$2\" \"$3\" --tensor latents_8 --scale 1 -o \"$4.png\" --per-image &&
                 od -An -tx1 -j16 -N8 \"$4.png\" && ls \"$4\"-0000.png \"$4\"-0001.png"
                 sh $<TARGET_FILE:digcl_cli>
                 "${CMAKE_SOURCE_DIR}/tests/reference/fixtures_committed/vae/kl/weights.safetensors"
                 "${CMAKE_SOURCE_DIR}/tests/reference/fixtures_committed/vae/kl/io.safetensors"
                 "${CMAKE_BINARY_DIR}/cli_decode_kl")
set_tests_properties(cli_decode_kl_png PROPERTIES
  ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/test-kernel-cache"
  PASS_REGULAR_EXPRESSION "00 00 00 86 00 00 00 44.*cli_decode_kl-0000.png.*cli_decode_kl-0001.png"
  FAIL_REGULAR_EXPRESSION "error")

# `digcl encode` (kill, resume, equal to an uninterrupted run; training on the shard set) and
# `digcl train --vae` (finite loss, bit-exact resume) with the committed reduced KL VAE.
add_test(NAME cli_vae_encode_resume_train
         COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/cli_vae_encode.sh" $<TARGET_FILE:digcl_cli>
                 "${CMAKE_SOURCE_DIR}" "${CMAKE_BINARY_DIR}/cli-vae-encode")
set_tests_properties(cli_vae_encode_resume_train PROPERTIES
  ENVIRONMENT "DIGCL_CACHE_DIR=${CMAKE_BINARY_DIR}/test-kernel-cache" TIMEOUT 300
  PASS_REGULAR_EXPRESSION "vae encode test passed" FAIL_REGULAR_EXPRESSION "FAIL:")

# Usage errors exit 2 naming what is missing or wrong.
add_test(NAME cli_encode_usage_exits_2
         COMMAND sh -c "\"$1\" encode --vae x 2>&1; echo exit=$?; \"$1\" encode --vae x --data y --image-size 30 -o z.safetensors 2>&1; echo exit=$?; \"$1\" train --data fashion-mnist --vae x --max-steps 1 2>&1; echo exit=$?"
                 sh $<TARGET_FILE:digcl_cli>)
set_tests_properties(cli_encode_usage_exits_2 PROPERTIES
  PASS_REGULAR_EXPRESSION "needs --vae FILE, --data DIR, --image-size S and -o.*exit=2.*not a multiple of 8.*exit=2.*--vae needs an RGB image folder.*exit=2")
