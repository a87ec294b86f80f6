/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.c — stderr logging with journal priority prefixes and a max level.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_parse_level(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "err",
                [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(names[i], s))
                        return (int) i;
        return -EINVAL;
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
