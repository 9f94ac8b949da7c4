#ifndef SUPABACKUP_CLIBPQ_SHIM_H
#define SUPABACKUP_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
