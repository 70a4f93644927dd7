/* error.c - names for the project's error codes. */
#include "error.h"

const char *sl_strerror(int err) {
  switch (err) {
    case SL_OK: return "ok";
    case SL_ENOMEM: return "out of memory";
    case SL_EINVAL: return "invalid value";
    case SL_EIO: return "input/output error";
    case SL_EJSON: return "not valid JSON";
    case SL_EFIELD: return "missing or invalid field";
    case SL_ETYPE: return "unknown type";
    case SL_EBASE64: return "bad base64";
    case SL_ESIG: return "signature does not verify";
    case SL_ECERTURL: return "certificate URL not allowed";
    case SL_ECERT: return "certificate unavailable";
    case SL_ETIME: return "timestamp outside certificate validity";
    case SL_ETOPIC: return "topic not allowed";
    case SL_EBUSY: return "busy";
    case SL_ENOTSES: return "not an SES event";
    case SL_ETOOBIG: return "too large";
    case SL_EDB: return "database error";
    case SL_ESIGVER: return "unsupported signature version";
    case SL_ESHUTDOWN: return "shutting down";
    case SL_EDUPKEY: return "duplicate JSON key";
    case SL_ENUL: return "NUL in a JSON string";
  }
  return "unknown error";
}
