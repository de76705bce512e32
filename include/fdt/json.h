/* JSON for request and response bodies: a parser into an arena-allocated document, a
 * builder, and a streaming writer. docs/json.md describes the behaviour in detail. */
#ifndef FDT_JSON_H
#define FDT_JSON_H

#include <fdt/common.h>
#include <fdt/error.h>
#include <stdbool.h>

/*
 * Overview
 *
 * A `struct fdt_json_doc` owns every byte of the values parsed into it or built in it; all of
 * them are released together by fdt_json_doc_clear() or fdt_json_doc_free(). A value is a
 * `struct fdt_json *` that is borrowed from its document and valid until the document is
 * cleared or freed. Objects keep their members in insertion order and have a hash index, so
 * finding any key costs O(1) however large the object is. Strings carry their length and may
 * contain NUL bytes (from "\u0000"); they are also NUL-terminated for convenience.
 *
 * Values are immutable except for adding to arrays and objects. Putting a value into a
 * container copies it: a scalar by value, an array or object by reference to its contents
 * (both places see later additions). A pointer to a member or element obtained earlier stays
 * valid, but after that container grows or the member is replaced it may show the older
 * value; look it up again after modifying the container.
 *
 * Threads: a document, its values and a writer belong to one thread at a time. Functions that
 * only read values (the getters, fdt_json_equal, encoding) may run in several threads at once
 * on the same document as long as no thread modifies it. Nothing in this module has global
 * mutable state.
 */

/* The kind of a value. FDT_JSON_NONE is what fdt_json_type() says about a NULL pointer, which
 * is how a missing member or element is reported. */
enum fdt_json_type {
    FDT_JSON_NONE = 0,
    FDT_JSON_NULL,
    FDT_JSON_BOOL,
    FDT_JSON_INT,    /* an integer literal that fits int64_t */
    FDT_JSON_DOUBLE, /* a number with a fraction or an exponent */
    FDT_JSON_STRING,
    FDT_JSON_ARRAY,
    FDT_JSON_OBJECT,
};

struct fdt_json_doc;
struct fdt_json;

/* The deepest nesting this module ever handles, whatever the limits say. */
#define FDT_JSON_DEPTH_MAX 1024

/* Default limits; see struct fdt_json_limits. */
#define FDT_JSON_DEFAULT_MAX_SIZE   (16u * 1024 * 1024)
#define FDT_JSON_DEFAULT_MAX_DEPTH  64u
#define FDT_JSON_DEFAULT_MAX_VALUES (1024u * 1024)
#define FDT_JSON_DEFAULT_MAX_STRING (1024u * 1024)

/*
 * Limits on what one parse accepts. Input beyond a limit is refused with FDT_ELIMIT and a
 * message naming the limit and the byte offset; memory used by a parse is therefore bounded
 * by a small multiple of max_size and max_values. Start from fdt_json_limits_default() and
 * change the fields you care about. A field set to 0 means "use the default".
 */
struct fdt_json_limits {
    size_t max_size;   /* bytes of input text */
    size_t max_depth;  /* nesting of arrays and objects; capped at FDT_JSON_DEPTH_MAX */
    size_t max_values; /* values in the document: the root, every element and every member */
    size_t max_string; /* bytes of one string or key after unescaping */
};

/* Fill `limits` with the defaults above. Thread: any. */
FDT_API void fdt_json_limits_default(struct fdt_json_limits *limits);

/* ---- Documents ---------------------------------------------------------------------------- */

/**
 * Create an empty document.
 * Returns the document, owned by the caller (release with fdt_json_doc_free()), or NULL when
 * memory ran out. Thread: any.
 */
FDT_API struct fdt_json_doc *fdt_json_doc_new(void);

/* Release a document and every value in it. NULL is a no-op. Thread: the owning thread. */
FDT_API void fdt_json_doc_free(struct fdt_json_doc *doc);

/**
 * Release every value in the document but keep the document (and a little memory) for reuse,
 * as a connection does between requests. Every value pointer from it becomes invalid.
 * Thread: the owning thread.
 */
FDT_API void fdt_json_doc_clear(struct fdt_json_doc *doc);

/* Bytes of memory the document holds right now. Thread: the owning thread. */
FDT_API size_t fdt_json_doc_memory(const struct fdt_json_doc *doc);

/* ---- Parsing ------------------------------------------------------------------------------ */

/**
 * Parse exactly one JSON value (RFC 8259) from `text` (`len` bytes, no NUL needed) into `doc`.
 *
 * On success returns 0 and sets *out to the root value, borrowed from `doc`. On failure
 * returns a negative code, sets *out to NULL and, when `err` is not NULL, fills it: err->code
 * is the return value, err->line the 1-based line, err->file NULL, and err->msg reads like
 * "line 1 col 17 (byte 16): invalid escape".
 *   FDT_EPROTO  the text is not valid JSON, or breaks a rule of docs/json.md: invalid UTF-8,
 *               lone surrogates, unescaped control characters, duplicate keys, integers
 *               outside int64_t, numbers outside the range of double, trailing characters.
 *   FDT_ELIMIT  a limit of `limits` was reached (NULL means the defaults).
 *   FDT_ENOMEM  memory ran out.
 *   FDT_EINVAL  doc, out or text (with len > 0) is NULL.
 * Memory used by a failed parse stays in `doc` until it is cleared or freed.
 *
 * Ownership: `text` is borrowed for the call only; nothing points into it afterwards.
 * Thread: the owning thread of `doc`. The parser never recurses, so deep input cannot
 * overflow the stack.
 */
FDT_API int fdt_json_parse(struct fdt_json_doc *doc, const char *text, size_t len,
                           const struct fdt_json_limits *limits, struct fdt_json **out,
                           struct fdt_error *err);

/* ---- Reading values ----------------------------------------------------------------------- */
/* Every getter accepts NULL and then returns FDT_JSON_NONE, 0, false or NULL, so lookups can be
 * chained: fdt_json_object_get(fdt_json_object_get(root, "params"), "id"). Results are borrowed
 * from the document of `v`. Thread: any thread while nobody modifies the document. */

FDT_API enum fdt_json_type fdt_json_type(const struct fdt_json *v);
/* The value of a boolean; false for anything else. */
FDT_API bool fdt_json_bool_value(const struct fdt_json *v);
/* The value of an integer; 0 for anything else. */
FDT_API int64_t fdt_json_int_value(const struct fdt_json *v);
/* The value of a double, or an integer converted to double; 0.0 for anything else. */
FDT_API double fdt_json_number_value(const struct fdt_json *v);
/* The bytes of a string (NUL-terminated; *len, if not NULL, gets the length, which counts any
 * NUL bytes inside). NULL for anything else. */
FDT_API const char *fdt_json_string_value(const struct fdt_json *v, size_t *len);
/* Elements of an array or members of an object; 0 for anything else. */
FDT_API size_t fdt_json_size(const struct fdt_json *v);
/* Element i of an array; NULL when out of range or not an array. */
FDT_API struct fdt_json *fdt_json_array_get(const struct fdt_json *v, size_t i);
/* The value of key in an object (O(1)); NULL when missing or not an object. */
FDT_API struct fdt_json *fdt_json_object_get(const struct fdt_json *v, const char *key);
FDT_API struct fdt_json *fdt_json_object_getn(const struct fdt_json *v, const char *key,
                                              size_t key_len);
/* Member i of an object in insertion order: its key (NUL-terminated, length in *key_len if not
 * NULL) and its value. NULL when out of range or not an object. */
FDT_API const char *fdt_json_object_key_at(const struct fdt_json *v, size_t i, size_t *key_len);
FDT_API struct fdt_json *fdt_json_object_value_at(const struct fdt_json *v, size_t i);

/* Checked getters for request parameters: 0 and the value in *out, or FDT_EINVAL (and *out
 * untouched) when v is NULL or of another type. fdt_json_get_string also gives the length. */
FDT_API int fdt_json_get_int(const struct fdt_json *v, int64_t *out);
FDT_API int fdt_json_get_bool(const struct fdt_json *v, bool *out);
FDT_API int fdt_json_get_string(const struct fdt_json *v, const char **out, size_t *len);

/**
 * Whether two values are equal: same type and value; arrays element by element; objects with
 * the same set of keys and equal values whatever the order. An integer never equals a double,
 * and 0.0 does not equal -0.0. Values nested deeper than FDT_JSON_DEPTH_MAX compare unequal.
 * Thread: any while nobody modifies the documents.
 */
FDT_API bool fdt_json_equal(const struct fdt_json *a, const struct fdt_json *b);

/* ---- Building values ---------------------------------------------------------------------- */
/* Constructors return a value owned by `doc`, or NULL when memory ran out or the argument is
 * refused (invalid UTF-8, a non-finite double, a string over 4 GiB). Strings and keys are copied.
 * Passing a NULL value to the container functions returns FDT_EINVAL, so a failed constructor
 * can be passed straight in and checked once. A value may be put into several containers of
 * its own document (see the overview for what that copies); never into itself (encoding the
 * cycle fails with FDT_ELIMIT) nor into a container of another document.
 * Thread: the owning thread of `doc`. */

FDT_API struct fdt_json *fdt_json_null(struct fdt_json_doc *doc);
FDT_API struct fdt_json *fdt_json_bool(struct fdt_json_doc *doc, bool b);
FDT_API struct fdt_json *fdt_json_int(struct fdt_json_doc *doc, int64_t i);
FDT_API struct fdt_json *fdt_json_double(struct fdt_json_doc *doc, double d);
/* A string from a NUL-terminated C string / from len bytes (which may contain NUL). */
FDT_API struct fdt_json *fdt_json_string(struct fdt_json_doc *doc, const char *s);
FDT_API struct fdt_json *fdt_json_stringn(struct fdt_json_doc *doc, const char *s, size_t len);
FDT_API struct fdt_json *fdt_json_array(struct fdt_json_doc *doc);
FDT_API struct fdt_json *fdt_json_object(struct fdt_json_doc *doc);

/* Append val to the array arr. Returns 0, FDT_EINVAL (arr not an array, val NULL) or
 * FDT_ENOMEM. */
FDT_API int fdt_json_array_append(struct fdt_json_doc *doc, struct fdt_json *arr,
                                  struct fdt_json *val);
/**
 * Set key to val in obj: a new key is appended (insertion order is kept), an existing key gets
 * the new value in place, so an object never has duplicate keys. Returns 0, FDT_EINVAL (obj not
 * an object, val NULL, key NULL or not valid UTF-8) or FDT_ENOMEM.
 */
FDT_API int fdt_json_object_set(struct fdt_json_doc *doc, struct fdt_json *obj, const char *key,
                                struct fdt_json *val);
FDT_API int fdt_json_object_setn(struct fdt_json_doc *doc, struct fdt_json *obj, const char *key,
                                 size_t key_len, struct fdt_json *val);

/* ---- Writing ------------------------------------------------------------------------------ */

/* The default maximum size of a writer's output, used when fdt_json_writer_init gets 0. */
#define FDT_JSON_WRITER_DEFAULT_MAX (64u * 1024 * 1024)

/**
 * A streaming writer of compact JSON text into a growable buffer with a hard maximum. Embed it
 * (on the stack or in a connection) and use only the functions below; the fields are private.
 *
 * Every call checks that the text stays one valid JSON value: a key only inside an object and
 * before its value, commas placed automatically, ends matching begins. The first error sticks:
 * every later call returns it and writes nothing, so a response can be written in one go and
 * checked once at fdt_json_writer_finish(). Errors:
 *   FDT_EINVAL  misuse (a value where a key is needed, unbalanced end, a second top-level
 *               value), a string or key that is not valid UTF-8, a non-finite double.
 *   FDT_ELIMIT  the output would exceed the maximum, or nesting exceeds FDT_JSON_DEPTH_MAX.
 *   FDT_ENOMEM  memory ran out.
 * Thread: the owning thread.
 */
struct fdt_json_writer {
    char *_buf;
    size_t _len;
    size_t _cap;
    size_t _max;
    int _err;
    uint32_t _depth;
    bool _first;
    bool _after_key;
    bool _done;
    unsigned char _kinds[FDT_JSON_DEPTH_MAX / 8]; /* bit set: that level is an object */
};

/* Initialise an empty writer whose output may grow to max bytes (0: the default). */
FDT_API void fdt_json_writer_init(struct fdt_json_writer *w, size_t max);
/* Release the writer's buffer. */
FDT_API void fdt_json_writer_deinit(struct fdt_json_writer *w);
/* Forget the text and any error but keep the buffer, to write the next response. */
FDT_API void fdt_json_writer_reset(struct fdt_json_writer *w);

FDT_API int fdt_json_writer_begin_object(struct fdt_json_writer *w);
FDT_API int fdt_json_writer_end_object(struct fdt_json_writer *w);
FDT_API int fdt_json_writer_begin_array(struct fdt_json_writer *w);
FDT_API int fdt_json_writer_end_array(struct fdt_json_writer *w);
/* A key inside an object: NUL-terminated, or len bytes (may contain NUL). Must be UTF-8. */
FDT_API int fdt_json_writer_key(struct fdt_json_writer *w, const char *key);
FDT_API int fdt_json_writer_keyn(struct fdt_json_writer *w, const char *key, size_t len);
/* A string value; escaped as in docs/json.md. Must be UTF-8. */
FDT_API int fdt_json_writer_string(struct fdt_json_writer *w, const char *s);
FDT_API int fdt_json_writer_stringn(struct fdt_json_writer *w, const char *s, size_t len);
FDT_API int fdt_json_writer_int(struct fdt_json_writer *w, int64_t i);
/* The shortest text that parses back to exactly d, always with '.' or 'e' so it stays a
 * double (1.0, -0.0, 1e+300). NaN and infinities are refused with FDT_EINVAL. */
FDT_API int fdt_json_writer_double(struct fdt_json_writer *w, double d);
FDT_API int fdt_json_writer_bool(struct fdt_json_writer *w, bool b);
FDT_API int fdt_json_writer_null(struct fdt_json_writer *w);
/**
 * Pre-encoded JSON text used as one value, copied as is. It is NOT checked: the caller
 * guarantees it is exactly one valid JSON value (for example a cached response fragment).
 */
FDT_API int fdt_json_writer_raw(struct fdt_json_writer *w, const char *json, size_t len);
/* A value from a document, with all its contents. Does not modify v. */
FDT_API int fdt_json_writer_value(struct fdt_json_writer *w, const struct fdt_json *v);

/**
 * Finish: returns the sticky error if any, FDT_EINVAL if the value is incomplete (nothing
 * written, or an object or array still open), else 0 with *data (NUL-terminated, borrowed from
 * the writer until its next call) and *len set.
 */
FDT_API int fdt_json_writer_finish(struct fdt_json_writer *w, const char **data, size_t *len);

/**
 * Like fdt_json_writer_finish, but hands the buffer over: on success *data is owned by the
 * caller (release with free()) and the writer is left empty, as after init.
 */
FDT_API int fdt_json_writer_take(struct fdt_json_writer *w, char **data, size_t *len);

/**
 * Encode v as compact JSON text of at most max bytes (0: FDT_JSON_WRITER_DEFAULT_MAX).
 * On success returns 0 and *out is a NUL-terminated buffer owned by the caller (release with
 * free()), *len its length. Errors are those of the writer; *out is NULL then.
 * Thread: any while nobody modifies the document of v.
 */
FDT_API int fdt_json_encode(const struct fdt_json *v, size_t max, char **out, size_t *len);

#endif
