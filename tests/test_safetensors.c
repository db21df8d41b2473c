/* Tests of the safetensors reader/writer (src/io/safetensors.c), no device:
 * - writer -> file -> reader round trip (F32, I64, scalar, zero-size, metadata,
 *   layout order, 8-byte header padding);
 * - F16/BF16/F64/integer conversion to float32 and int64;
 * - every rejection path, each checked for its message;
 * - the shape-expectation helpers and the digcl_fatal wrappers;
 * - the atomic write (replace, failure leaves the old file, no temp files left).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digcl/safetensors.h"
#include "test_util.h"

/* ------------------------------------------------------------- helpers */

/* A file image: 8-byte little-endian header length, the header, then data. */
typedef struct image {
    unsigned char bytes[4096];
    size_t size;
} image;

static image make_image_with_length(unsigned long long header_length, const char *header,
                                    const void *data, size_t data_size) {
    image im;
    size_t n = strlen(header);
    assert_true(8 + n + data_size <= sizeof im.bytes);
    for (int i = 0; i < 8; i++) im.bytes[i] = (unsigned char)(header_length >> (8 * i));
    memcpy(im.bytes + 8, header, n);
    if (data_size) memcpy(im.bytes + 8 + n, data, data_size);
    im.size = 8 + n + data_size;
    return im;
}

static image make_image(const char *header, const void *data, size_t data_size) {
    return make_image_with_length(strlen(header), header, data, data_size);
}

static digcl_safetensors *parse_ok(const image *im) {
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    int status = digcl_st_parse(im->bytes, im->size, "test.safetensors", &st, &err);
    if (status != 0) fail_msg("unexpected rejection: %s", err.message);
    return st;
}

static void expect_rejected(const image *im, const char *needle) {
    digcl_safetensors *st = (digcl_safetensors *)1;
    digcl_st_error err;
    err.message[0] = '\0';
    assert_int_equal(digcl_st_parse(im->bytes, im->size, "bad.safetensors", &st, &err), -1);
    assert_null(st);
    if (!strstr(err.message, needle) || !strstr(err.message, "bad.safetensors"))
        fail_msg("message \"%s\" lacks \"%s\" or the file name", err.message, needle);
}

static const float four_floats[4] = {1.0f, 2.0f, 3.0f, 4.0f};

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------- round trip */

static digcl_st_writer *sample_writer(float *matrix, int64_t *labels) {
    digcl_st_error err;
    digcl_st_writer *w = digcl_st_writer_new();
    int64_t shape_23[2] = {2, 3}, shape_3[1] = {3}, shape_04[2] = {0, 4};
    static float scalar = -1.5f;
    for (int i = 0; i < 6; i++) matrix[i] = 0.25f * (float)i - 1.0f;
    labels[0] = 1000, labels[1] = -3, labels[2] = 1LL << 40;
    assert_int_equal(digcl_st_writer_add_f32(w, "z.matrix", 2, shape_23, matrix, &err), 0);
    assert_int_equal(digcl_st_writer_add_f32(w, "a.scalar", 0, NULL, &scalar, &err), 0);
    assert_int_equal(digcl_st_writer_add_f32(w, "m.empty", 2, shape_04, NULL, &err), 0);
    assert_int_equal(digcl_st_writer_add_i64(w, "y", 1, shape_3, labels, &err), 0);
    assert_int_equal(digcl_st_writer_set_metadata(w, "dig.config", "{\"arch\":\"dig\"}", &err), 0);
    assert_int_equal(digcl_st_writer_set_metadata(w, "note", "first", &err), 0);
    assert_int_equal(digcl_st_writer_set_metadata(w, "note", "replaced", &err), 0);
    return w;
}

static void test_round_trip(void **state) {
    (void)state;
    float matrix[6], got[6], scalar;
    int64_t labels[3], got_labels[3];
    char path[512];
    digcl_st_error err;
    digcl_st_writer *w = sample_writer(matrix, labels);
    snprintf(path, sizeof path, "%s/round.safetensors", test_temp_dir);
    assert_int_equal(digcl_st_writer_write(w, path, &err), 0);
    digcl_st_writer_free(w);

    digcl_safetensors *st = NULL;
    if (digcl_st_open(path, &st, &err) != 0) fail_msg("%s", err.message);
    assert_int_equal(st->n_tensors, 4);
    assert_int_equal((size_t)(st->buffer - st->owned_bytes) % 8, 0); /* padded header */
    int64_t shape_23[2] = {2, 3}, shape_3[1] = {3}, shape_04[2] = {0, 4};
    assert_int_equal(digcl_st_load_f32(st, "z.matrix", 2, shape_23, got, &err), 0);
    assert_memory_equal(got, matrix, sizeof matrix);
    assert_int_equal(digcl_st_load_f32(st, "a.scalar", 0, NULL, &scalar, &err), 0);
    assert_true(scalar == -1.5f);
    const digcl_st_tensor *empty, *y;
    assert_int_equal(digcl_st_expect(st, "m.empty", 2, shape_04, &empty, &err), 0);
    assert_int_equal(empty->numel, 0);
    assert_int_equal(digcl_st_expect(st, "y", 1, shape_3, &y, &err), 0);
    assert_int_equal(y->dtype, DIGCL_ST_I64);
    assert_int_equal(y->begin, 0); /* 8-byte dtypes are laid out first */
    assert_int_equal(digcl_st_read_i64(st, y, got_labels, &err), 0);
    assert_memory_equal(got_labels, labels, sizeof labels);
    assert_string_equal(digcl_st_metadata(st, "dig.config"), "{\"arch\":\"dig\"}");
    assert_string_equal(digcl_st_metadata(st, "note"), "replaced");
    assert_null(digcl_st_metadata(st, "absent"));
    digcl_st_close(st);
}

static void test_serialize_matches_file_layout(void **state) {
    (void)state;
    float matrix[6];
    int64_t labels[3];
    uint8_t *bytes;
    size_t size;
    digcl_st_error err;
    digcl_st_writer *w = sample_writer(matrix, labels);
    assert_int_equal(digcl_st_writer_serialize(w, &bytes, &size, &err), 0);
    assert_int_equal(bytes[8], '{');
    digcl_safetensors *st;
    assert_int_equal(digcl_st_parse(bytes, size, NULL, &st, &err), 0);
    assert_string_equal(st->label, "<memory>");
    /* tensors are sorted by name for lookup */
    assert_string_equal(st->tensors[0].name, "a.scalar");
    assert_string_equal(st->tensors[3].name, "z.matrix");
    digcl_st_close(st);
    free(bytes);
    digcl_st_writer_free(w);
}

static void test_writer_rejects_bad_tensors(void **state) {
    (void)state;
    digcl_st_error err;
    digcl_st_writer *w = digcl_st_writer_new();
    int64_t shape[1] = {4}, negative[1] = {-1};
    assert_int_equal(digcl_st_writer_add_f32(w, "a", 1, shape, four_floats, &err), 0);
    assert_int_equal(digcl_st_writer_add_f32(w, "a", 1, shape, four_floats, &err), -1);
    assert_non_null(strstr(err.message, "'a' added twice"));
    assert_int_equal(digcl_st_writer_add_f32(w, "__metadata__", 1, shape, four_floats, &err), -1);
    assert_int_equal(digcl_st_writer_add_f32(w, "b", 1, negative, four_floats, &err), -1);
    assert_non_null(strstr(err.message, "bad dim -1"));
    assert_int_equal(
        digcl_st_writer_add_f32(w, "c", DIGCL_ST_MAX_RANK + 1, shape, four_floats, &err), -1);
    digcl_st_writer_free(w);
}

/* ------------------------------------------------------------- conversion */

static void test_f16_bf16_f64_conversion(void **state) {
    (void)state;
    /* F16: 1, -2, 2^-24 (smallest subnormal), 65504 (max), +inf, NaN */
    const unsigned char f16[12] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00,
                                   0xff, 0x7b, 0x00, 0x7c, 0x00, 0x7e};
    /* BF16: 1, -5, 2^-133 (subnormal), -inf */
    const unsigned char bf16[8] = {0x80, 0x3f, 0xa0, 0xc0, 0x01, 0x00, 0x80, 0xff};
    double f64 = 0.1;
    unsigned char data[28];
    memcpy(data, f16, 12);
    memcpy(data + 12, bf16, 8);
    memcpy(data + 20, &f64, 8);
    image im = make_image("{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
                          "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[12,20]},"
                          "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[20,28]}}",
                          data, sizeof data);
    digcl_safetensors *st = parse_ok(&im);
    float h[6], b[4], d;
    digcl_st_error err;
    assert_int_equal(digcl_st_read_f32(st, digcl_st_find(st, "h"), h, &err), 0);
    assert_true(h[0] == 1.0f && h[1] == -2.0f && h[2] == ldexpf(1.0f, -24));
    assert_true(h[3] == 65504.0f && isinf(h[4]) && h[4] > 0 && isnan(h[5]));
    assert_int_equal(digcl_st_read_f32(st, digcl_st_find(st, "b"), b, &err), 0);
    assert_true(b[0] == 1.0f && b[1] == -5.0f && b[2] == ldexpf(1.0f, -133));
    assert_true(isinf(b[3]) && b[3] < 0);
    assert_int_equal(digcl_st_read_f32(st, digcl_st_find(st, "d"), &d, &err), 0);
    assert_true(d == 0.1f);
    digcl_st_close(st);
}

static void test_integer_conversion(void **state) {
    (void)state;
    const int32_t i32[2] = {1000, -7};
    const float f32[2] = {999.0f, 0.5f};
    unsigned char data[16];
    memcpy(data, i32, 8);
    memcpy(data + 8, f32, 8);
    image im = make_image("{\"y\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                          data, sizeof data);
    digcl_safetensors *st = parse_ok(&im);
    int64_t values[2];
    float floats[2];
    digcl_st_error err;
    assert_int_equal(digcl_st_read_i64(st, digcl_st_find(st, "y"), values, &err), 0);
    assert_true(values[0] == 1000 && values[1] == -7);
    assert_int_equal(digcl_st_read_f32(st, digcl_st_find(st, "y"), floats, &err), 0);
    assert_true(floats[0] == 1000.0f && floats[1] == -7.0f);
    assert_int_equal(digcl_st_read_i64(st, digcl_st_find(st, "t"), values, &err), -1);
    assert_non_null(strstr(err.message, "tensor 't': element 1 is not an integer"));
    digcl_st_close(st);
}

static void test_unconvertible_dtype(void **state) {
    (void)state;
    const unsigned char data[2] = {0x38, 0x40};
    image im =
        make_image("{\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", data, 2);
    digcl_safetensors *st = parse_ok(&im);
    float out[2];
    digcl_st_error err;
    assert_int_equal(digcl_st_read_f32(st, digcl_st_find(st, "e"), out, &err), -1);
    assert_non_null(strstr(err.message, "tensor 'e': cannot convert dtype F8_E4M3 to F32"));
    digcl_st_close(st);
}

static void test_accepts_padding_empty_and_sub_byte(void **state) {
    (void)state;
    const unsigned char nibbles[2] = {0x12, 0x34};
    image padded = make_image("{\"__metadata__\":{\"a\":\"b\"}}     ", NULL, 0);
    digcl_safetensors *st = parse_ok(&padded);
    assert_int_equal(st->n_tensors, 0);
    assert_string_equal(digcl_st_metadata(st, "a"), "b");
    digcl_st_close(st);
    image nothing = make_image("{}", NULL, 0);
    digcl_st_close(parse_ok(&nothing));
    image f4 =
        make_image("{\"q\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]}}", nibbles, 2);
    digcl_st_close(parse_ok(&f4));
}

/* ------------------------------------------------------------- rejections */

static void test_rejects_bad_prefix(void **state) {
    (void)state;
    image tiny = {{1, 2, 3}, 3};
    expect_rejected(&tiny, "too short for the 8-byte header length");
    image huge = make_image_with_length(100000001ull, "{}", NULL, 0);
    expect_rejected(&huge, "exceeds the limit");
    image past_end = make_image_with_length(64, "{}", NULL, 0);
    expect_rejected(&past_end, "goes past the end");
    image not_brace = make_image(" {}", NULL, 0);
    expect_rejected(&not_brace, "must start with '{'");
    image array = make_image("[1,2]", NULL, 0);
    expect_rejected(&array, "must start with '{'");
    image zero_length = make_image("", NULL, 0);
    expect_rejected(&zero_length, "must start with '{'");
    image bad_utf8 = make_image("{\"\xff\xfe\":{}}", NULL, 0);
    expect_rejected(&bad_utf8, "not valid UTF-8");
}

static void test_rejects_bad_json(void **state) {
    (void)state;
    image broken = make_image("{\"a\":", NULL, 0);
    expect_rejected(&broken, "not valid JSON");
    image trailing = make_image("{} x", NULL, 0);
    expect_rejected(&trailing, "followed only by spaces");
    image two_objects = make_image("{}{}", NULL, 0);
    expect_rejected(&two_objects, "followed only by spaces");
}

static void test_rejects_truncated_data(void **state) {
    (void)state;
    image im = make_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                          four_floats, 12);
    expect_rejected(&im, "tensor 'w': data_offsets [0, 16] go past the byte buffer of 12");
}

static void test_rejects_holes_overlaps_and_extra_bytes(void **state) {
    (void)state;
    float data[4] = {0};
    image hole = make_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                            data, 16);
    expect_rejected(&hole, "tensor 'b' starts at byte 8 but the previous tensor ends at 4 (hole");
    image overlap = make_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                               data, 12);
    expect_rejected(&overlap, "(overlap");
    image late_start =
        make_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data, 8);
    expect_rejected(&late_start, "tensor 'a' starts at byte 4 but the previous tensor ends at 0");
    image extra =
        make_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data, 8);
    expect_rejected(&extra, "tensors cover 4 bytes but the byte buffer holds 8");
}

static void test_rejects_duplicates(void **state) {
    (void)state;
    float data[2] = {0};
    image twice = make_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             data, 8);
    expect_rejected(&twice, "duplicate tensor name 'a'");
    image field = make_image("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
                             "\"data_offsets\":[0,4]}}",
                             data, 4);
    expect_rejected(&field, "tensor 'a': duplicate field \"dtype\"");
    image meta = make_image("{\"__metadata__\":{},\"__metadata__\":{}}", NULL, 0);
    expect_rejected(&meta, "__metadata__ appears twice");
    image meta_key = make_image("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0);
    expect_rejected(&meta_key, "has the key \"k\" twice");
}

static void test_rejects_bad_entries(void **state) {
    (void)state;
    float data[2] = {0};
    static const struct {
        const char *header;
        const char *needle;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         "tensor 'a': unknown dtype \"F33\""},
        {"{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}",
         "tensor 'a': \"dtype\" must be a string, got a number"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",
         "tensor 'a': data_offsets [0, 4] span 4 bytes, expected 8 (shape [2] x F32)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
         "tensor 'a': shape entry 0 is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
         "shape entry 0 is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}",
         "\"shape\" must be an array of non-negative integers, got a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
         "rank 9, at most 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
         "\"data_offsets\" must be [BEGIN, END]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}",
         "\"data_offsets\" must be [BEGIN, END]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
         "data_offsets [4, 0] end before they begin"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "tensor 'a': missing \"data_offsets\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
         "tensor 'a': unknown field \"x\""},
        {"{\"a\":[1,2]}", "tensor 'a': expected an object with dtype, shape and data_offsets"},
        {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}",
         "is not a whole number of bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
         "shape product overflows"},
        {"{\"__metadata__\":{\"k\":1}}", "__metadata__ entry \"k\" must be a string, got a number"},
        {"{\"__metadata__\":[\"k\"]}", "__metadata__ must be an object mapping strings to strings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        image im = make_image(cases[i].header, data, 4);
        if (strncmp(cases[i].header, "{\"__", 4) == 0) im.size -= 4; /* no tensor data */
        expect_rejected(&im, cases[i].needle);
    }
}

/* ------------------------------------------------------------- expectations */

static digcl_safetensors *two_tensor_file(image *im) {
    *im = make_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
                     four_floats, 16);
    return parse_ok(im);
}

static void test_expect_messages(void **state) {
    (void)state;
    image im;
    digcl_safetensors *st = two_tensor_file(&im);
    digcl_st_error err;
    int64_t right[2] = {2, 2}, wrong[2] = {4, 1};
    const char *known[1] = {"w"}, *other[1] = {"v"};
    assert_int_equal(digcl_st_expect(st, "w", 2, right, NULL, &err), 0);
    assert_int_equal(digcl_st_expect(st, "w", 2, wrong, NULL, &err), -1);
    assert_string_equal(err.message,
                        "test.safetensors: tensor 'w' has shape [2, 2], expected [4, 1]");
    assert_int_equal(digcl_st_expect(st, "v", 1, wrong, NULL, &err), -1);
    assert_string_equal(err.message, "test.safetensors: missing tensor 'v' (expected shape [4])");
    assert_int_equal(digcl_st_check_no_unexpected(st, known, 1, &err), 0);
    assert_int_equal(digcl_st_check_no_unexpected(st, other, 1, &err), -1);
    assert_non_null(strstr(err.message, "unexpected tensor 'w' [2, 2] F32"));
    digcl_st_close(st);
}

static void load_misshaped(void *arg) {
    int64_t wrong[1] = {5};
    float out[5];
    digcl_st_load_f32_or_die(arg, "w", 1, wrong, out);
}

static void open_missing_file(void *arg) {
    (void)arg;
    digcl_st_open_or_die("/nonexistent/dir/model.safetensors");
}

static void test_fatal_wrappers(void **state) {
    (void)state;
    image im;
    char message[1024];
    digcl_safetensors *st = two_tensor_file(&im);
    assert_int_equal(test_expect_fatal(load_misshaped, st, message, sizeof message), 1);
    assert_non_null(strstr(message, "tensor 'w' has shape [2, 2], expected [5]"));
    assert_int_equal(test_expect_fatal(open_missing_file, NULL, message, sizeof message), 1);
    assert_non_null(strstr(message, "/nonexistent/dir/model.safetensors: cannot open"));
    digcl_st_close(st);
}

/* ------------------------------------------------------------- atomic write */

static void write_one(const char *path, float value, int expect_status) {
    digcl_st_error err;
    int64_t shape[1] = {1};
    digcl_st_writer *w = digcl_st_writer_new();
    assert_int_equal(digcl_st_writer_add_f32(w, "v", 1, shape, &value, &err), 0);
    int status = digcl_st_writer_write(w, path, &err);
    if (status != expect_status) fail_msg("write %s: status %d: %s", path, status, err.message);
    if (status != 0) assert_non_null(strstr(err.message, path));
    digcl_st_writer_free(w);
}

static float read_one(const char *path) {
    digcl_safetensors *st = digcl_st_open_or_die(path);
    float value;
    int64_t shape[1] = {1};
    digcl_st_load_f32_or_die(st, "v", 1, shape, &value);
    digcl_st_close(st);
    return value;
}

static void test_atomic_write(void **state) {
    (void)state;
    char dir[512], path[600], blocked[600];
    snprintf(dir, sizeof dir, "%s/atomic", test_temp_dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_one(path, 1.0f, 0);
    write_one(path, 2.0f, 0); /* replaces */
    assert_true(read_one(path) == 2.0f);
    assert_int_equal(count_dir_entries(dir), 1); /* no temp file left behind */
    /* rename onto a directory fails: the directory stays, the temp file goes */
    snprintf(blocked, sizeof blocked, "%s/blocked.safetensors", dir);
    assert_int_equal(mkdir(blocked, 0755), 0);
    write_one(blocked, 3.0f, -1);
    struct stat info;
    assert_int_equal(stat(blocked, &info), 0);
    assert_true(S_ISDIR(info.st_mode));
    assert_int_equal(count_dir_entries(dir), 2);
    assert_true(read_one(path) == 2.0f);
    /* a missing directory fails cleanly */
    snprintf(blocked, sizeof blocked, "%s/missing/x.safetensors", dir);
    write_one(blocked, 4.0f, -1);
}

/* F16 writing rounds to nearest even (numpy's astype(float16)) and reads back exactly. */
static void test_f16_writer(void **state) {
    (void)state;
    const float values[] = {0.0f,
                            -0.0f,
                            1.0f,
                            -2.5f,
                            65504.0f,
                            65520.0f,
                            1e-8f,
                            2.98023224e-8f,
                            5.96046448e-8f,
                            6.103515625e-5f,
                            1.0f + 1.0f / 2048.0f,
                            1.0f + 3.0f / 2048.0f,
                            0.1f,
                            -INFINITY,
                            3.0e-5f};
    const uint16_t bits[] = {0x0000, 0x8000, 0x3c00, 0xc100, 0x7bff, 0x7c00, 0x0000, 0x0000,
                             0x0001, 0x0400, 0x3c00, 0x3c02, 0x2e66, 0xfc00, 0x01f7};
    const int64_t shape[1] = {15};
    digcl_st_writer *w = digcl_st_writer_new();
    digcl_st_error err;
    assert_int_equal(digcl_st_writer_add_f16(w, "h", 1, shape, values, &err), 0);
    uint8_t *bytes = NULL;
    size_t size = 0;
    assert_int_equal(digcl_st_writer_serialize(w, &bytes, &size, &err), 0);
    digcl_safetensors *st = NULL;
    assert_int_equal(digcl_st_parse(bytes, size, "f16", &st, &err), 0);
    const digcl_st_tensor *t = digcl_st_find(st, "h");
    assert_non_null(t);
    assert_int_equal(t->dtype, DIGCL_ST_F16);
    for (int i = 0; i < 15; ++i) {
        const uint16_t got = (uint16_t)(t->data[2 * i] | (t->data[2 * i + 1] << 8));
        if (got != bits[i])
            fail_msg("value %d (%g): F16 0x%04x, expected 0x%04x", i, (double)values[i], got,
                     bits[i]);
    }
    float back[15];
    assert_int_equal(digcl_st_read_f32(st, t, back, &err), 0);
    assert_true(back[2] == 1.0f && back[3] == -2.5f && back[4] == 65504.0f && isinf(back[5]));
    digcl_st_close(st);
    free(bytes);
    digcl_st_writer_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_serialize_matches_file_layout),
        cmocka_unit_test(test_writer_rejects_bad_tensors),
        cmocka_unit_test(test_f16_bf16_f64_conversion),
        cmocka_unit_test(test_integer_conversion),
        cmocka_unit_test(test_unconvertible_dtype),
        cmocka_unit_test(test_accepts_padding_empty_and_sub_byte),
        cmocka_unit_test(test_rejects_bad_prefix),
        cmocka_unit_test(test_rejects_bad_json),
        cmocka_unit_test(test_rejects_truncated_data),
        cmocka_unit_test(test_rejects_holes_overlaps_and_extra_bytes),
        cmocka_unit_test(test_rejects_duplicates),
        cmocka_unit_test(test_rejects_bad_entries),
        cmocka_unit_test(test_expect_messages),
        cmocka_unit_test(test_fatal_wrappers),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_f16_writer),
    };
    return cmocka_run_group_tests(tests, test_temp_dir_setup, test_temp_dir_teardown);
}
