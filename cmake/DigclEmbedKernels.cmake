# digcl_embed_kernels(OUTPUT kernel1.cl kernel2.cl ...)
# Generates a C file holding every OpenCL source as a byte array plus a lookup
# table {stem, source, length}. Runs at build time (cmake -P), so editing a .cl
# file rebuilds the library; no Python is involved.
function(digcl_embed_kernels output)
  set(inputs ${ARGN})
  add_custom_command(
    OUTPUT "${output}"
    COMMAND "${CMAKE_COMMAND}" "-DOUTPUT=${output}" "-DINPUTS=${inputs}"
            -P "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_kernels.cmake"
    DEPENDS ${inputs} "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_kernels.cmake"
    COMMENT "Embedding OpenCL kernels"
    VERBATIM)
endfunction()
