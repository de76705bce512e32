/* Private to src/config: the table of settings that drives parsing, defaults, the
 * reference documentation (fdt-config-doc) and fdt__cfg_describe. */
#ifndef FDT_SRC_CONFIG_INT_H
#define FDT_SRC_CONFIG_INT_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>

/* Where a key lives. LISTEN and RESOURCE sections are named: [listen.NAME]. */
enum fdt__cfg_section {
    FDT__CFG_SERVER,
    FDT__CFG_LISTEN,
    FDT__CFG_RESOURCE,
    FDT__CFG_APP,
    FDT__CFG_PYTHON, /* [python]: the interpreter of a Python application ([app] wsgi) */
};

/* How a value is read and which field type it is stored in. */
enum fdt__cfg_type {
    FDT__CFG_INT,     /* int; whole numbers from min to max */
    FDT__CFG_DOUBLE,  /* double; seconds from min to max, fractions allowed */
    FDT__CFG_SIZE,    /* size_t; bytes with an optional k, m or g suffix (powers of 1024) */
    FDT__CFG_BOOL,    /* bool; yes/no, true/false, on/off, 1/0 */
    FDT__CFG_STRING,  /* char[size]; at least min bytes; one of choices if they are given */
    FDT__CFG_PATH,    /* char[size]; a relative path is anchored at the file's directory */
    FDT__CFG_ENUM,    /* int-sized enum; one of choices, stored as the choice's value */
    FDT__CFG_ADDRESS, /* char[size]; HOST:PORT, [V6]:PORT or unix:PATH (anchored as a path) */
};

struct fdt__cfg_choice {
    const char *name;
    int value; /* a second name with the same value is an alias, left out of the docs */
};

/* A value of any type: a row's default, or a field read back for describing. */
union fdt__cfg_value {
    long i;        /* INT, ENUM */
    double d;      /* DOUBLE */
    size_t z;      /* SIZE */
    bool b;        /* BOOL */
    const char *s; /* STRING, PATH, ADDRESS; NULL is "" */
};

/* One row of the table. */
struct fdt__cfg_key {
    enum fdt__cfg_section section;
    const char *key;
    enum fdt__cfg_type type;
    size_t offset; /* of the field in struct fdt_cfg, fdt_listen_cfg or fdt_resource_cfg */
    size_t size;   /* of the field; for strings the bytes including the NUL */
    double min;    /* numbers: the bounds; STRING: the shortest length */
    double max;
    const char *unit;                      /* "whole seconds" for INT counts of seconds, or NULL */
    const char *zero;                      /* what 0 means when it is special ("never") */
    const struct fdt__cfg_choice *choices; /* ENUM and restricted STRING, ends with name NULL */
    bool nocase;                           /* choices match whatever the case */
    bool name;                /* STRING: letters, digits, '_' and '-' only (fdt__cfg_name_ok) */
    union fdt__cfg_value def; /* the default */
    const char *doc;          /* one line for the reference */
};

extern const struct fdt__cfg_key fdt__cfg_keys[];
extern const size_t fdt__cfg_n_keys;

/* "server", "listen.NAME", "resource.NAME", "app" or "python" (for messages and documents). */
const char *fdt__cfg_section_title(enum fdt__cfg_section s);
/* The row for key in section s, or NULL. */
const struct fdt__cfg_key *fdt__cfg_key_find(enum fdt__cfg_section s, const char *key);
/* The known key of section s nearest to key (edit distance at most 2), or NULL. */
const char *fdt__cfg_key_suggest(enum fdt__cfg_section s, const char *key);
/* Edit distance with adjacent transpositions, capped at cap + 1 (to stay cheap). */
int fdt__cfg_distance(const char *a, const char *b, int cap);

/* The field of row k inside base (cfg, a listener or a resource). */
void *fdt__cfg_field(const struct fdt__cfg_key *k, void *base);
/* Read the field of row k inside base into v (strings point into base). */
void fdt__cfg_value_get(const struct fdt__cfg_key *k, const void *base, union fdt__cfg_value *v);
/* Whether two values of row k are equal. */
bool fdt__cfg_value_equal(const struct fdt__cfg_key *k, const union fdt__cfg_value *a,
                          const union fdt__cfg_value *b);
/* Write v as it would appear in a file ("64k", "yes", "info"). */
void fdt__cfg_value_format(const struct fdt__cfg_key *k, const union fdt__cfg_value *v, char *out,
                           size_t size);
/* Write the default as the reference shows it (def, with what 0 means). */
void fdt__cfg_default_format(const struct fdt__cfg_key *k, char *out, size_t size);
/* Write the values the row accepts ("1 to 256", "seconds, 0.001 to 86400", "yes or no");
 * errors say "expected " followed by this. */
void fdt__cfg_values_format(const struct fdt__cfg_key *k, char *out, size_t size);

#endif
