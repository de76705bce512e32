/* Internal side of logging: where lines go, and the per-process prefix.
 *
 * fdt_log_write() formats each event as one line and writes it with one write(2):
 *
 *     2026-11-26T09:15:02.123Z WARN 4242 worker/3 http: message
 *
 * that is the UTC time with milliseconds, the level (ERROR, WARN, INFO, DEBUG), the pid,
 * role/generation as set by fdt__log_set_role() ("main/0" until it is called), the module
 * (FDT_LOG_MODULE, "-" when NULL), "req=ID " while the thread works on a request
 * (fdt__log_set_request_id), then the message. Newlines and carriage returns in the
 * message become spaces; a longer line is cut to 2047 bytes, newline included. */
#ifndef FDT_SRC_LOG_H
#define FDT_SRC_LOG_H

#include <fdt/log.h>
#include <stdbool.h>
#include <stddef.h>

/* [server] log_format: with json each line of the error log is one JSON object,
 *
 *     {"time":"2026-11-26T09:15:02.123Z","level":"warn","pid":4242,"role":"worker",
 *      "generation":3,"module":"http","request_id":"9f2c...","message":"..."}
 *
 * (one line; request_id is null outside a request). Thread: main, before other threads
 * start (the worker's format is set before its threads exist). */
void fdt__log_set_json(bool json);
/* The generation shown on this process's lines (fdt__log_set_role). */
unsigned fdt__log_generation(void);
/* The request the calling thread works on (its id, borrowed until the next call; NULL:
 * none): lines it logs meanwhile carry it ("req=ID" in text, request_id in JSON). */
void fdt__log_set_request_id(const char *id);
/* Append s to out[*o, size) as a JSON string with its quotes; what does not fit is cut
 * (the closing quote always fits when size - *o >= 2). Bytes that are not valid UTF-8 and
 * control characters are escaped as \u00XX. */
void fdt__log_json_string(char *out, size_t size, size_t *o, const char *s);

void fdt__log_set_level(int level);
/* Role ("master", "worker"; at most 15 bytes) and generation, shown on each line as
 * "role/generation". Thread: main, before other threads start. */
void fdt__log_set_role(const char *role, unsigned generation);
/* Send lines to path (appended), or to stderr when path is NULL or empty. Returns 0 or
 * -errno; on error the previous destination is kept. Thread: main. */
int fdt__log_open(const char *path);
/* Log files the server creates (error and access logs) get mode 0600, or 0640 when
 * group_read (the server runs with a configured group). Thread: main, before forking. */
void fdt__log_set_file_mode(bool group_read);
/* Open a log file at path for appending, creating it with that mode; `what` names it in the
 * warning logged when an existing file is readable by others. Returns the descriptor or
 * -errno. Thread: any. */
int fdt__log_open_file(const char *path, const char *what);
/* Reopen the current file (SIGUSR1, after log rotation). */
int fdt__log_reopen(void);
/* The fd lines are written to (for handing to children). */
int fdt__log_fd(void);

#endif
