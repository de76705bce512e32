/* Shared definitions for the public fdtserver headers. */
#ifndef FDT_COMMON_H
#define FDT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define FDT_API __attribute__((visibility("default")))

#if defined(__GNUC__)
#define FDT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FDT_PRINTF(fmt, args)
#endif

#endif
