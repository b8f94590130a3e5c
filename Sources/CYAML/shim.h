#ifndef AUDITGAP_CYAML_SHIM_H
#define AUDITGAP_CYAML_SHIM_H
#include <yaml.h>
#endif
