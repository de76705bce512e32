#include "fdt_config.h"

/* fdt__cfg_describe: what a configuration would load, in INI form, driven by the table. */

#include "config/config.h"
#include "config/config_int.h"

#include <string.h>

/* Print the keys of one section: those that differ from their defaults when changed_only,
 * else every key that has a value. The header is printed before the first key. */
static void describe_section(FILE *out, enum fdt__cfg_section s, const char *title,
                             const void *base, bool changed_only)
{
    bool header = false;
    for (size_t i = 0; i < fdt__cfg_n_keys; i++) {
        const struct fdt__cfg_key *k = &fdt__cfg_keys[i];
        if (k->section != s)
            continue;
        union fdt__cfg_value v;
        fdt__cfg_value_get(k, base, &v);
        if (changed_only && fdt__cfg_value_equal(k, &v, &k->def))
            continue;
        char text[FDT_CFG_PATH_MAX + 32];
        fdt__cfg_value_format(k, &v, text, sizeof(text));
        if (!changed_only && !text[0])
            continue;
        if (!header)
            fprintf(out, "\n[%s]\n", title);
        header = true;
        fprintf(out, "%s = %s\n", k->key, text);
    }
}

void fdt__cfg_describe(const struct fdt_cfg *cfg, FILE *out)
{
    fprintf(out, "; %s%s\n", cfg->file[0] ? "configuration file " : "no configuration file",
            cfg->file);
    fprintf(out, "; [server]: the settings that differ from their defaults\n");
    describe_section(out, FDT__CFG_SERVER, "server", cfg, true);
    char title[FDT_CFG_NAME_MAX + 16];
    for (int i = 0; i < cfg->n_listeners; i++) {
        snprintf(title, sizeof(title), "listen.%s", cfg->listeners[i].name);
        describe_section(out, FDT__CFG_LISTEN, title, &cfg->listeners[i], false);
    }
    describe_section(out, FDT__CFG_APP, "app", cfg, false);
    if (!cfg->app_module[0] && !cfg->app_wsgi[0] && !cfg->app_jsonrpc[0] && cfg->n_app_keys > 0)
        fprintf(out, "\n[app]\n");
    for (int i = 0; i < cfg->n_app_keys; i++)
        fprintf(out, "%s = %s\n", cfg->app_keys[i].key, cfg->app_keys[i].value);
    describe_section(out, FDT__CFG_PYTHON, "python", cfg, false);
    for (int i = 0; i < cfg->n_resources; i++) {
        snprintf(title, sizeof(title), "resource.%s", cfg->resources[i].name);
        describe_section(out, FDT__CFG_RESOURCE, title, &cfg->resources[i], false);
    }
}
