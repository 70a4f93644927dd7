#!/bin/sh
# manpage.sh BIN - writes the man page seslog(1) to stdout, made from the
# --help texts of BIN and of each of its commands, so the page says what
# the binary says. Needs only sh, sed and awk.
set -eu
bin=${1:?usage: scripts/manpage.sh BIN}
version=$("$bin" version | sed 's/^seslog //')

# roff-safe text: backslashes, a leading dot or quote, hyphens of options
esc() {
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" -e 's/-/\\-/g'
}

# One command's --help: the text before "Options" as it is laid out, then
# each option as a tagged paragraph (continuation lines join it).
section() {
  printf '.SS "%s"\n' "$1"
  shift
  "$bin" "$@" --help | esc | awk '
    /^Options/ { if (pre) print ".fi"; pre = 0; opts = 1; next }
    !opts { if (!pre) { print ".nf"; pre = 1 } print; next }
    /^  \\-/ {
      line = substr($0, 3)
      i = index(line, "  ")
      if (i == 0) { flag = line; desc = "" } else {
        flag = substr(line, 1, i - 1); desc = substr(line, i); sub(/^ +/, "", desc)
      }
      if (desc ~ /^[.\047]/) desc = "\\&" desc
      printf ".TP\n.B %s\n%s\n", flag, desc
      next
    }
    /^ +[^ ]/ { sub(/^ +/, ""); if ($0 ~ /^[.\047]/) $0 = "\\&" $0; print; next }
    END { if (pre) print ".fi" }
  '
}

cat <<HEAD
.TH SESLOG 1 "" "seslog $version" "User Commands"
.SH NAME
seslog \\- receive, verify, store and watch Amazon SES events delivered by SNS
.SH SYNOPSIS
.B seslog
[\\fICOMMAND\\fR] [\\fIOPTIONS\\fR]
.SH DESCRIPTION
HEAD
"$bin" --help | sed '1,2d' | esc | sed -e '1i .nf' -e '$a .fi'
echo '.SH COMMANDS'
for c in serve import query simulate vacuum; do
  section "seslog $c" "$c"
done
section "seslog suppression" suppression
for c in list check add remove export import; do
  section "seslog suppression $c" suppression "$c"
done
cat <<'TAIL'
.SH ENVIRONMENT
Every option of \fBseslog serve\fR is also read from \fBSESLOG_\fR\fINAME\fR (upper case, dashes
as underscores), as shown after each option; a flag wins over the variable.
.SH FILES
.TP
.I ./data/seslog.db
the default database (\fB\-\-db\fR)
.TP
.I /etc/seslog/seslog.env
the environment file of the systemd unit \fBseslog.service\fR
.SH EXIT STATUS
0 on success; 2 for bad options, bad values and unreadable files; 1 when a command did part of
its work (see each command).
TAIL
