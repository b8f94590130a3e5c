#ifndef AUDITGAP_CZLIB_SHIM_H
#define AUDITGAP_CZLIB_SHIM_H
#include <zlib.h>
#endif
