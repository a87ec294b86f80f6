/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h — gmemd's logging: one line per message on stderr, with a syslog
 * priority prefix ("<3>") when stderr is the journal, so systemd files it at
 * the right level. Only the main program logs above debug.
 */
#pragma once

#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
int log_parse_level(const char *s);
/* Logs and returns -abs(error), so "return log_error_errno(r, "...");" works. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...)   log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)    log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)  log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)   log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
