/* log.h - one line per event on stderr: `level=info msg="..." key=value`.
 *
 * The level is checked before anything is formatted. Values given through
 * log_kv are quoted and escaped when they need it, so untrusted text (a
 * TopicArn, a remote error) cannot forge a line. Never pass a secret. */
#ifndef SESLOG_LOG_H
#define SESLOG_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

extern enum log_level log_min_level;

/* Parses "debug|info|warn|error". Returns 0 or SL_EINVAL. */
int log_set_level(const char *name);

/* log_kv(LOG_INFO, "listening", "addr", "127.0.0.1:8490", NULL):
 * msg, then key/value string pairs ending with NULL. */
void log_kv(enum log_level level, const char *msg, ...);

#define log_enabled(l) ((l) >= log_min_level)

#endif
