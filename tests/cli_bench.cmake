# `digcl bench sweep` (apps/bench_sweep.c): tiny resolutions on PoCL, one repeat.
set(DIGCL_BIN "$<TARGET_FILE:digcl_cli>")

# Two models, two resolutions, both phases: the table with ratios, the JSON cells and the
# two-panel PNG; --memory-limit turns the fwd+bwd cells into OOM cells and the sweep goes on;
# U-DiG runs in it.
add_test(NAME cli_bench_sweep
  COMMAND sh -c "cd \"$2\" && rm -f s.json s.png && \"$1\" bench sweep --models DiG-S/2,DiT-S/2,U-DiG-S --resolutions 32,64 --repeats 1 --memory-limit 200 --json s.json --plot s.png 2>&1 && echo exit=$? && grep -c '\"oom\":	true' s.json && grep -c '\"median_ms\"' s.json && grep -q digcl-bench-sweep/1 s.json && od -An -c -N4 s.png"
          sh ${DIGCL_BIN} "${CMAKE_CURRENT_BINARY_DIR}")
set_tests_properties(cli_bench_sweep PROPERTIES PASS_REGULAR_EXPRESSION
  "DiG-S/2 +forward +32 +[0-9.]+ +[0-9.]+ +[-0-9.]+ +[0-9.]+\n.*DiG-S/2 +fwd\\+bwd +32 +OOM.*needs [0-9.]+ MiB, device has 200.0 MiB.*DiT-S/2 +forward +64 +[0-9.]+ .*DiG-S/2 [0-9.]+x faster, [-0-9.]+% less memory.*U-DiG-S +forward +64 +[0-9.]+.*exit=0\n6\n6\n +211 +P +N +G")

# Bad lists: an unknown preset, a resolution U-DiG cannot halve twice, a bad --only: exit 2.
add_test(NAME cli_bench_sweep_usage_errors
  COMMAND sh -c "\"$1\" bench sweep --models DiG-S/2,Nope 2>&1; echo exit=$?; \"$1\" bench sweep --models U-DiG-S --resolutions 32,40 2>&1; echo exit=$?; \"$1\" bench sweep --only step 2>&1; echo exit=$?; \"$1\" bench sweep --resolutions 30 2>&1; echo exit=$?"
          sh ${DIGCL_BIN})
set_tests_properties(cli_bench_sweep_usage_errors PROPERTIES PASS_REGULAR_EXPRESSION
  "unknown model preset 'Nope'.*exit=2.*U-DiG-S needs px / 8 to be a multiple of 4, got 40 px.*exit=2.*--only expects forward or fwd\\+bwd.*exit=2.*30 is not a multiple of 8.*exit=2")

# `digcl bench report` (apps/bench_report.c) at smoke resolutions (the standard 256/1024 px set
# is far too slow for CI on the CPU): the versioned JSON with device, versions, kernel rows
# (2 SGEMM + 4 attention) and model rows (DiG-S/2 and DiT-S/2 x 2 sizes x 3 phases).
add_test(NAME cli_bench_report
  COMMAND sh -c "cd \"$2\" && rm -f r.json && \"$1\" bench report --quick --resolutions 32,64 --json r.json >/dev/null 2>&1; echo exit=$?; grep -o 'digcl-bench-report/1\\|\"driver\"\\|\"digcl_version\"\\|\"gemm_backend\"' r.json | sort -u | tr '\\n' ' '; echo; grep -c '\"name\":	\"sgemm\"\\|\"name\":	\"attention' r.json; grep -c '\"phase\":' r.json; \"$1\" bench report --resolutions 32 2>&1; echo exit=$?"
          sh ${DIGCL_BIN} "${CMAKE_CURRENT_BINARY_DIR}")
set_tests_properties(cli_bench_report PROPERTIES PASS_REGULAR_EXPRESSION
  "exit=0\n\"digcl_version\" \"driver\" \"gemm_backend\" digcl-bench-report/1 \n6\n12\n.*--resolutions expects two multiples of 16.*exit=2")
