#!/bin/sh
# A rank that dies (SIGKILL) or stalls (SIGSTOP, so that mpirun does not notice)
# during `mpirun -np 2 digcl train` ends the job with an error, never a hang:
# mpirun ends a job whose rank was killed; a stalled rank makes the others stop
# after --dist-timeout with "no answer from the other ranks".
# usage: cli_dist_kill.sh DIGCL WORKDIR   (exit 77: skipped, no mpirun)
set -u
digcl=$1
work=$2
command -v mpirun >/dev/null 2>&1 || { echo "no mpirun: skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
flags="--data fashion-mnist --arch dig --depth 4 --hidden-size 32 --num-heads 2 --patch-size 4
       --global-batch-size 8 --workers 1 --log-every 1 --ckpt-every 100000 --max-steps 100000
       --dist-timeout 4"
fail() { echo "FAIL: $*"; cat "$work"/*.txt; exit 1; }

# rank_of PID RANK: the child of mpirun PID that is rank RANK
rank_of() {
    for child in $(pgrep -P "$1"); do
        if tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$child"; return 0
        fi
    done
    return 1
}

hit_rank_1() { # SIGNAL EXPECTED-REGEX
    out="$work/$1.txt"
    # shellcheck disable=SC2086
    mpirun -np 2 --oversubscribe --allow-run-as-root "$digcl" train $flags \
        --results-dir "$work/r-$1" >"$out" 2>&1 &
    job=$!
    tries=0
    while ! grep -q "^step 3 " "$out" 2>/dev/null && [ $tries -lt 1200 ]; do tries=$((tries + 1)); sleep 0.1; done
    grep -q '^step 3 ' "$out" || { kill -9 "$job"; fail "SIG$1: the job did not start training"; }
    rank1=$(rank_of "$job" 1) || { kill -9 "$job"; fail "SIG$1: rank 1 not found under mpirun $job"; }
    start=$(date +%s)
    kill "-$1" "$rank1"
    tries=0
    while kill -0 "$job" 2>/dev/null && [ $tries -lt 600 ]; do tries=$((tries + 1)); sleep 0.1; done
    if kill -0 "$job" 2>/dev/null; then
        kill -9 "$rank1" 2>/dev/null; kill -9 "$job"; fail "SIG$1 of rank 1: the job hangs after 60 s"
    fi
    wait "$job"
    status=$?
    [ "$status" -ne 0 ] || fail "SIG$1 of rank 1: mpirun exited 0"
    grep -Eq "$2" "$out" || fail "SIG$1 of rank 1: no message matching '$2'"
    echo "SIG$1 of rank 1: the job ended with status $status after $(($(date +%s) - start)) s: $(grep -Eo "$2" "$out" | head -n 1)"
}

hit_rank_1 KILL "exited on signal 9|no answer from the other ranks"
hit_rank_1 STOP "rank 0: MPI .*: no answer from the other ranks in 4 s \(a rank died or stalled\?\)"
echo "rank failure test passed"
