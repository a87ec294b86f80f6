/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.c — stderr logging with journal priority prefixes and a max level.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "string-table.h"

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

static const char *const log_level_table[LOG_DEBUG + 1] = {
        [LOG_EMERG]   = "emerg",
        [LOG_ALERT]   = "alert",
        [LOG_CRIT]    = "crit",
        [LOG_ERR]     = "err",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE]  = "notice",
        [LOG_INFO]    = "info",
        [LOG_DEBUG]   = "debug",
};
static DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(log_level, int);

int log_parse_level(const char *s) {
        return log_level_from_string(s);
}

int log_internal(int level, int error, const char *fmt, ...) {
        static int journal = -1;
        char buf[1024];
        va_list ap;

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;

        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") != NULL;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (journal)
                fprintf(stderr, "<%d>%s%s%s\n", level, buf, error ? ": " : "", error ? strerror(error) : "");
        else
                fprintf(stderr, "gmemd: %s%s%s\n", buf, error ? ": " : "", error ? strerror(error) : "");
        return -error;
}
