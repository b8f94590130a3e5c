#ifndef AUDITGAP_CCRYPTO_SHIM_H
#define AUDITGAP_CCRYPTO_SHIM_H
#include <openssl/evp.h>
#endif
