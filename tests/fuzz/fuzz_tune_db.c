/* libFuzzer target: a tuning database (runtime/jit/tune_db.c, hr_tune_db_load: the header line,
 * the gpu/arch/... lines, record lines with their key, shape class and times), then what a run does
 * with it (hr_tune_db_lookup of every record's own key, hr_tune_record_best). Properties: every
 * record is found by its own key, exactly, its best value is one of its values; a database that was
 * read is written (hr_tune_db_save) and reads back with the same records. */
#include "fuzz_util.h"

#include "jit/tune_db.h"

static void check_records(const hr_tune_db *db) {
    for (int i = 0; i < db->n; i++) {
        const hr_tune_record *r = &db->records[i];
        const char *names[HR_TUNE_MAX_DIMS];
        for (int k = 0; k < r->n_dims; k++) names[k] = r->dim_names[k];
        int exact = 0;
        const hr_tune_record *found =
            hr_tune_db_lookup(db, r->kernel, r->src, r->dtype, r->head, names, r->dims, r->n_dims, &exact);
        if (!found || !exact) fuzz_fail("record %d (%s) is not found by its own key", i, r->kernel);
        int best = hr_tune_record_best(r), listed = 0;
        for (int k = 0; k < r->n_times; k++) listed |= r->values[k] == best;
        if (!listed) fuzz_fail("record %d (%s): best value %d is not one of its values", i, r->kernel, best);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char in[512], warn[2048], err[512];
    snprintf(in, sizeof in, "%s", fuzz_path("in.tune"));
    fuzz_write(in, data, size);
    hr_tune_db db;
    hr_tune_db_init(&db, "", "");
    int n = hr_tune_db_load(&db, in, warn, sizeof warn);
    if (n < 0) {
        hr_tune_db_free(&db);
        return 0;
    }
    check_records(&db);
    const char *out = fuzz_path("out.tune");
    if (hr_tune_db_save(&db, out, err, sizeof err)) fuzz_fail("saving: %s", err);
    hr_tune_db again;
    hr_tune_db_init(&again, "", "");
    int m = hr_tune_db_load(&again, out, warn, sizeof warn);
    if (m != again.n || again.n != db.n) fuzz_fail("%d records written, %d read back (%s)", db.n, m, warn);
    hr_tune_db_free(&again);
    hr_tune_db_free(&db);
    return 0;
}
