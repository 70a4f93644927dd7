/* error.h - the project's one error enum.
 *
 * Every function that can fail returns 0 on success or one of these
 * negative codes; sl_strerror() names a code for logs and messages. */
#ifndef SESLOG_ERROR_H
#define SESLOG_ERROR_H

enum sl_err {
  SL_OK = 0,
  SL_ENOMEM = -1,    /* allocation failed */
  SL_EINVAL = -2,    /* a bad argument or value */
  SL_EIO = -3,       /* a file or socket operation failed */
  SL_EJSON = -4,     /* not JSON, or JSON of the wrong shape */
  SL_EFIELD = -5,    /* a required field is missing or has the wrong type */
  SL_ETYPE = -6,     /* an unknown SNS Type or SES type */
  SL_EBASE64 = -7,   /* bad base64 */
  SL_ESIG = -8,      /* signature does not verify */
  SL_ECERTURL = -9,  /* SigningCertURL / SubscribeURL breaks the host rule */
  SL_ECERT = -10,    /* certificate unreadable, or could not be fetched */
  SL_ETIME = -11,    /* timestamp outside the certificate's validity */
  SL_ETOPIC = -12,   /* topic not on the allowlist */
  SL_EBUSY = -13,    /* queue full or database busy: try again later */
  SL_ENOTSES = -14,  /* valid JSON that carries no SES event */
  SL_ETOOBIG = -15,  /* over a size cap */
  SL_EDB = -16,      /* the database refused (disk full, corrupt, locked) */
  SL_ESIGVER = -17,  /* unknown SignatureVersion */
  SL_EDUPKEY = -19,  /* a JSON object has a key twice */
  SL_ENUL = -20,     /* a JSON string holds U+0000 */
  SL_ESHUTDOWN = -18 /* the component is stopping */
};

const char *sl_strerror(int err);

#endif
