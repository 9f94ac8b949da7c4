#ifndef SUPABACKUP_CZSTD_SHIM_H
#define SUPABACKUP_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
