#include "fdt_config.h"

#include "http/http_int.h"
#include "http_harness.h"
#include "util/util.h"

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Replays the fuzz corpus (fuzz/corpus/http/) through the same function the libFuzzer
 * target runs, so that every normal build checks the inputs that once found a bug (the
 * standalone driver idea of jansson's test/ossfuzz). The corpus is found from
 * FDT_SOURCE_ROOT, or by walking up from this executable (the build directory lives in
 * the source tree). */

static bool corpus_dir(char *out, size_t size)
{
    const char *root = getenv("FDT_SOURCE_ROOT");
    char dir[PATH_MAX];
    struct stat st;
    if (root) {
        snprintf(out, size, "%s/fuzz/corpus/http", root);
        return stat(out, &st) == 0;
    }
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n <= 0)
        return false;
    dir[n] = '\0';
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            return false;
        *slash = '\0';
        snprintf(out, size, "%s/fuzz/corpus/http", dir);
        if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
            return true;
    }
}

static void test_replay_corpus(void **state)
{
    (void)state;
    char dir[PATH_MAX + 64];
    assert_true(corpus_dir(dir, sizeof(dir)));
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX * 2];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        fuzz_one(buf, n);
        files++;
    }
    closedir(d);
    assert_true(files >= 10);
    print_message("replayed %d corpus files\n", files);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
