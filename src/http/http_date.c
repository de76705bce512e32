#include "fdt_config.h"

#include "http/http_int.h"

#include <stdio.h>
#include <time.h>

/* The Date header: formatted by hand (strftime's names depend on the locale) and cached
 * per thread for the current second, so a busy thread formats it once a second. */

void fdt__http_date_format(time_t t, char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static _Thread_local time_t t_date_sec = -1;
static _Thread_local char t_date[30];

const char *fdt__http_date_now(void)
{
    time_t now = time(NULL);
    if (now != t_date_sec) {
        fdt__http_date_format(now, t_date);
        t_date_sec = now;
    }
    return t_date;
}
