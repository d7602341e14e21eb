/* Shared CLI helpers: human-readable sizes and counts, option-name matching, exact JSON
 * integers. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli/util.h"
#include "testdata.h"

static void check_bytes(uint64_t n, const char *want) {
    char buf[32];
    size_t len = cli_format_bytes(n, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
}

static void test_format_bytes(void **state) {
    (void)state;
    check_bytes(0, "0 B");
    check_bytes(1023, "1023 B");
    check_bytes(1024, "1.00 KiB");
    check_bytes(1536, "1.50 KiB");
    check_bytes(1048575, "1.00 MiB"); /* 1023.999 KiB would print as "1024.00 KiB" */
    check_bytes(1171200, "1.12 MiB");
    check_bytes(12ull << 30, "12.00 GiB");
    check_bytes(UINT64_MAX, "16.00 EiB");
    /* Like snprintf: truncated output is NUL-terminated, the return value is the full length. */
    char small[4];
    assert_int_equal(cli_format_bytes(1536, small, sizeof small), strlen("1.50 KiB"));
    assert_string_equal(small, "1.5");
}

static void check_count(uint64_t n, const char *want) {
    char buf[32];
    cli_format_count(n, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_format_count(void **state) {
    (void)state;
    check_count(0, "0");
    check_count(999, "999");
    check_count(1000, "1.00K");
    check_count(292800, "292.8K");
    check_count(999949, "999.9K");
    check_count(999950, "1.00M"); /* not "1000.0K" */
    check_count(7241732096ull, "7.24B");
    check_count(70553706496ull, "70.6B");
    check_count(405000000000000ull, "405.0T");
}

static void test_opt_is(void **state) {
    (void)state;
    assert_true(cli_opt_is("--json", "json"));
    assert_true(cli_opt_is("--num_gpu", "num_gpu"));
    assert_true(cli_opt_is("--num-gpu", "num_gpu"));
    assert_false(cli_opt_is("-num_gpu", "num_gpu"));
    assert_false(cli_opt_is("num_gpu", "num_gpu"));
    assert_false(cli_opt_is("--num_gpux", "num_gpu"));
    assert_false(cli_opt_is("--num", "num_gpu"));
    assert_false(cli_opt_is("--", "json"));
    assert_true(cli_is_help("-h"));
    assert_true(cli_is_help("--help"));
    assert_false(cli_is_help("help"));
}

/* Integers above 2^53 survive exactly, which a cJSON number would not. */
static void test_json_u64(void **state) {
    (void)state;
    cJSON *o = cJSON_CreateObject();
    assert_non_null(o);
    assert_true(cli_json_add_u64(o, "big", UINT64_MAX));
    cJSON *arr = cJSON_AddArrayToObject(o, "arr");
    assert_true(cli_json_append_u64(arr, (1ull << 53) + 1));
    char *text = cJSON_PrintUnformatted(o);
    assert_string_equal(text, "{\"big\":18446744073709551615,\"arr\":[9007199254740993]}");
    free(text);
    cJSON_Delete(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_bytes),
        cmocka_unit_test(test_format_count),
        cmocka_unit_test(test_opt_is),
        cmocka_unit_test(test_json_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
