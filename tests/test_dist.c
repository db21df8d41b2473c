/* Data-parallel training (src/dist/, apps/train_dist.c) through the real
 * binary under `mpirun -np 2` on PoCL, with a tiny DiG on Fashion-MNIST:
 * - 2 ranks with 4 rows each match 1 rank with 8 after 5 steps: every tensor
 *   of the checkpoint (weights, EMA, both AdamW moments) within 1e-6
 *   relative L2, the logged losses within 1e-6 (same rows, timesteps, noise
 *   and label dropout per global row), and the ranks' weights hashed equal
 *   after every step (--check-weights-every 1, which stops the run otherwise);
 * - a 2-rank run stopped at step 3 and resumed to 6 is bit-identical to one
 *   that ran 6 steps; resuming it with 1 rank is refused (exit 2);
 * - a global batch that does not split over the ranks exits 2;
 * - the library under mpirun (this executable started as 2 ranks): the
 *   gradient averager gives bitwise (a + b) / 2 of both ranks' random buffers
 *   (odd count, odd buckets, the extra values, reads released by progress
 *   reports at odd offsets, several steps), and the weights check finds the
 *   rank whose bytes differ.
 * Killing a rank is tests/cli_dist_kill.sh. Skipped without MPI or mpirun. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digcl/dist.h"
#include "digcl/safetensors.h"
#include "test_util.h"

#define TINY                                                                                   \
    "--data fashion-mnist --arch dig --depth 4 --hidden-size 32 --num-heads 2 --patch-size 4 " \
    "--workers 1 --log-every 1 --class-dropout 0.1 --global-seed 3 --global-batch-size 8"
#define MPIRUN "mpirun -np 2 --oversubscribe --allow-run-as-root "

static char binary[1024], work[1024];

static int setup(void **state) {
    (void)state;
    const char *dir = getenv("DIGCL_TEST_BINARY_DIR");
    snprintf(binary, sizeof binary, "%s/bin/digcl", dir ? dir : "build");
    snprintf(work, sizeof work, "%s/test-dist", dir ? dir : "build");
    char command[16384];
    snprintf(command, sizeof command, "rm -rf '%s' && mkdir -p '%s'", work, work);
    return system(command) == 0 ? 0 : -1;
}

static void skip_without_mpi(void) {
    if (!digcl_dist_available() || access(binary, X_OK) != 0 ||
        system("command -v mpirun >/dev/null 2>&1") != 0)
        skip();
}

/* Runs `digcl train` (prefix "" or MPIRUN) with extra flags; the exit status. */
static int train(const char *prefix, const char *flags, const char *log_name) {
    char command[16384];
    snprintf(command, sizeof command, "cd '%s' && %s'%s' train " TINY " %s >%s.txt 2>&1", work,
             prefix, binary, flags, log_name);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void print_log(const char *log_name) {
    char command[16384];
    snprintf(command, sizeof command, "cat '%s/%s.txt'", work, log_name);
    if (system(command) != 0) printf("(no log)\n");
}

static digcl_safetensors *open_checkpoint(const char *run, int step) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s/000-custom/checkpoints/%07d.safetensors", work, run, step);
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open(path, &st, &err) != 0) fail_msg("%s", err.message);
    return st;
}

/* The largest relative L2 difference over the tensors of two checkpoints
 * (bitwise: the count of tensors whose bytes differ instead). */
static double compare(const char *run_a, const char *run_b, int step, int bitwise) {
    digcl_safetensors *a = open_checkpoint(run_a, step), *b = open_checkpoint(run_b, step);
    assert_int_equal(a->n_tensors, b->n_tensors);
    double worst = 0;
    for (size_t i = 0; i < a->n_tensors; i++) {
        const digcl_st_tensor *x = &a->tensors[i], *y = digcl_st_find(b, x->name);
        assert_non_null(y);
        assert_int_equal(x->numel, y->numel);
        if (bitwise) {
            worst += memcmp(x->data, y->data, x->end - x->begin) != 0;
            continue;
        }
        float *u = malloc(x->numel * sizeof *u), *v = malloc(x->numel * sizeof *v);
        digcl_st_error err;
        assert_int_equal(digcl_st_read_f32(a, x, u, &err), 0);
        assert_int_equal(digcl_st_read_f32(b, y, v, &err), 0);
        double diff = 0, norm = 0;
        for (uint64_t k = 0; k < x->numel; k++) {
            diff += ((double)u[k] - v[k]) * ((double)u[k] - v[k]);
            norm += (double)u[k] * u[k];
        }
        double rel = norm > 0 ? sqrt(diff / norm) : sqrt(diff);
        if (rel > worst) worst = rel;
        free(u), free(v);
    }
    digcl_st_close(a), digcl_st_close(b);
    return worst;
}

/* The logged losses of a run's log.jsonl, in order. */
static int read_losses(const char *run, double *losses, int max) {
    char path[8192], line[2048];
    snprintf(path, sizeof path, "%s/%s/000-custom/log.jsonl", work, run);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && n < max && fgets(line, sizeof line, f)) {
        const char *loss = strstr(line, "\"loss\":");
        if (loss) losses[n++] = strtod(loss + 7, NULL);
    }
    if (f) fclose(f);
    return n;
}

static void test_two_ranks_match_one(void **state) {
    (void)state;
    skip_without_mpi();
    int one = train("", "--max-steps 5 --ckpt-every 5 --results-dir one", "one");
    if (one != 0) print_log("one");
    assert_int_equal(one, 0);
    int two = train(MPIRUN,
                    "--max-steps 5 --ckpt-every 5 --results-dir two --dist-bucket-mb 0.01 "
                    "--check-weights-every 1",
                    "two");
    if (two != 0) print_log("two");
    assert_int_equal(two, 0);
    double worst = compare("one", "two", 5, 0);
    printf("  2 ranks x 4 vs 1 rank x 8 after 5 steps: worst tensor rel L2 %.3g\n", worst);
    assert_true(worst < 1e-6);
    assert_true(worst > 0 || compare("one", "two", 5, 1) == 0); /* a difference is measured */
    double a[8], b[8];
    assert_int_equal(read_losses("one", a, 8), 5);
    assert_int_equal(read_losses("two", b, 8), 5);
    for (int i = 0; i < 5; i++) assert_true(fabs(a[i] - b[i]) <= 1e-6 * fabs(a[i]));
    /* the same split without overlap (sums after backward) gives the same bits */
    setenv("DIGCL_DIST_OVERLAP", "0", 1);
    int serial = train(MPIRUN,
                       "--max-steps 5 --ckpt-every 5 --results-dir serial "
                       "--dist-bucket-mb 0.01",
                       "serial");
    unsetenv("DIGCL_DIST_OVERLAP");
    assert_int_equal(serial, 0);
    assert_true(compare("two", "serial", 5, 1) == 0);
}

static void test_resume_is_bit_exact(void **state) {
    (void)state;
    skip_without_mpi();
    assert_int_equal(
        train(MPIRUN, "--max-steps 6 --ckpt-every 3 --results-dir straight", "straight"), 0);
    assert_int_equal(
        train(MPIRUN, "--max-steps 3 --ckpt-every 3 --results-dir resumed", "resumed1"), 0);
    int refused =
        train("", "--max-steps 6 --ckpt-every 3 --results-dir resumed --resume auto", "refused");
    print_log("refused");
    assert_int_equal(refused, 2);
    int resumed = train(MPIRUN, "--max-steps 6 --ckpt-every 3 --results-dir resumed --resume auto",
                        "resumed2");
    if (resumed != 0) print_log("resumed2");
    assert_int_equal(resumed, 0);
    assert_true(compare("straight", "resumed", 6, 1) == 0);
    double a[8], b[8];
    assert_int_equal(read_losses("straight", a, 8), 6);
    assert_int_equal(read_losses("resumed", b, 8), 6);
    assert_memory_equal(a, b, 6 * sizeof a[0]);
}

/* ------------------------------------------------------------ as 2 ranks */

static void rank_data(int rank, int step, float *x, size_t n) {
    test_rng rng = test_rng_seeded((uint64_t)(100 * step + rank + 1));
    test_fill_normal(&rng, x, n, 1.0f);
}

static int ranks_main(void) {
    digcl_dist *dist = digcl_dist_init(NULL, NULL);
    int rank = digcl_dist_rank(dist), world = digcl_dist_world(dist), bad = 0;
    if (world != 2) return 3;
    digcl_dist_set_timeout(dist, 60);
    digcl_context *ctx = digcl_context_create(&(digcl_context_options){0});
    const size_t count = 1001, extra = 3;
    float *mine = malloc((count + extra) * sizeof *mine), *other = malloc((count + extra) * 4);
    float *got = malloc((count + extra) * sizeof *got);
    digcl_buffer grad_buffer = digcl_buffer_create(ctx, count * 4, "grads");
    digcl_buffer value_buffer = digcl_buffer_create(ctx, (extra + 5) * 4, "values");
    cl_mem grads = grad_buffer.mem, values = value_buffer.mem;
    digcl_grad_sync *sync = digcl_grad_sync_create(dist, ctx, grads, count, 97, (int)extra);
    for (int step = 0; step < 3; step++) {
        rank_data(rank, step, mine, count + extra);
        rank_data(1 - rank, step, other, count + extra);
        digcl_grad_sync_start(sync);
        digcl_write(ctx, grads, 0, count * 4, mine);
        digcl_grad_sync_ready(sync, 900); /* buckets of 97: only [970, 1001) lies above */
        digcl_write(ctx, values, 5 * 4, extra * 4, mine + count);
        digcl_grad_sync_ready(sync, 400);
        digcl_grad_sync_finish(sync, values, 5);
        digcl_read(ctx, grads, 0, count * 4, got);
        digcl_read(ctx, values, 5 * 4, extra * 4, got + count);
        for (size_t i = 0; i < count + extra; i++) {
            float sum = rank == 0 ? mine[i] + other[i] : other[i] + mine[i];
            if (got[i] != sum * 0.5f) bad++;
        }
    }
    printf("  rank %d: gradient averager, 3 steps of %zu + %zu floats: %d wrong\n", rank, count,
           extra, bad);
    char error[512] = "";
    digcl_write(ctx, grads, 0, count * 4, other); /* rank 1 holds rank 0's data, 0 rank 1's */
    int differ = digcl_dist_check_same_buffer(dist, ctx, grads, count * 4, got, "the test buffer",
                                              error, sizeof error);
    bad += differ != -1 || !strstr(error, "rank 1 holds other bytes than rank 0");
    rank_data(0, 7, mine, count);
    digcl_write(ctx, grads, 0, count * 4, mine);
    bad += digcl_dist_check_same_buffer(dist, ctx, grads, count * 4, got, "the test buffer", error,
                                        sizeof error) != 0;
    printf("  rank %d: weights check: '%s'\n", rank, error);
    digcl_grad_sync_release(sync);
    digcl_buffer_release(&grad_buffer), digcl_buffer_release(&value_buffer);
    free(mine), free(other), free(got);
    digcl_context_release(ctx);
    digcl_dist_finalize(dist);
    return bad ? 1 : 0;
}

static void test_library_as_two_ranks(void **state) {
    (void)state;
    skip_without_mpi();
    char command[16384];
    snprintf(command, sizeof command, MPIRUN "'%s/tests/test_dist' 2>&1",
             getenv("DIGCL_TEST_BINARY_DIR") ? getenv("DIGCL_TEST_BINARY_DIR") : "build");
    int status = system(command);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_batch_must_split(void **state) {
    (void)state;
    skip_without_mpi();
    int status = train(MPIRUN, "--global-batch-size 5 --max-steps 1 --results-dir odd", "odd");
    print_log("odd");
    assert_int_equal(status, 2);
}

int main(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE")) return ranks_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_as_two_ranks),
        cmocka_unit_test(test_two_ranks_match_one),
        cmocka_unit_test(test_resume_is_bit_exact),
        cmocka_unit_test(test_batch_must_split),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
