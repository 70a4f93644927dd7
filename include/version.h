/* version.h - the release, printed by `seslog version` and sent as the
 * User-Agent of outbound requests. */
#ifndef SESLOG_VERSION_H
#define SESLOG_VERSION_H
#define SESLOG_VERSION "0.1.0"
#endif
