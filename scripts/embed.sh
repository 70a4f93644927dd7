#!/bin/sh
# Turns a text file into a C string constant: embed.sh FILE NAME > out.c
set -e
printf '/* generated from %s by scripts/embed.sh; do not edit */\n' "$1"
printf 'const char %s[] =\n' "$2"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/  "/' -e 's/$/\\n"/' "$1"
printf ';\n'
