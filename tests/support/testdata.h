/* Locating ../shared/testdata from tests.
 *
 * testdata_dir() returns the folder (env STRATA_TESTDATA, else the path CMake was given)
 * or NULL when it is absent. Tests that need it call TESTDATA_REQUIRE(): where the data is
 * absent the test is skipped visibly, except under CI=true, where that is a failure. */
#ifndef STRATA_TESTS_TESTDATA_H
#define STRATA_TESTS_TESTDATA_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

const char *testdata_dir(void);
/* testdata_dir() joined with a relative path, malloc'd (caller frees); NULL if absent. */
char *testdata_path(const char *relative);
/* True when running under CI=true. */
int testdata_in_ci(void);
/* True when testdata_dir()/relative exists. A test looping over many files uses it to run the
 * files a partial copy of the data holds (a machine the whole folder cannot be carried to):
 * a missing file is skipped with a message, except under CI=true, where it is a failure. */
int testdata_has(const char *relative);
/* Reads a whole file (malloc'd; caller frees); NULL on failure. */
void *testdata_read_file(const char *path, size_t *size);

#define TESTDATA_REQUIRE()                                                          \
    do {                                                                            \
        if (!testdata_dir()) {                                                      \
            if (testdata_in_ci()) fail_msg("shared testdata missing under CI=true"); \
            print_message("[  SKIP    ] shared testdata not found\n");              \
            skip();                                                                 \
        }                                                                           \
    } while (0)

#endif
