#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Fail (exit 1, one "file:line: name" per hit) when a banned C function is
# called in the sources: include/ lib/ ports/ server/ agent/ boot/ sim/
# tools/ bench/ fuzz/ (*.c, *.h). Comments, string and character literals
# are stripped first, so a comment that names a function is fine; a call
# is a name followed by "(", not preceded by "." or "->" (a member) or by
# another identifier character (snprintf is not sprintf).
#
# Banned, and what to use instead (STYLE.md, docs/fuzzing.md "Hygiene"):
#   strcpy strcat sprintf vsprintf gets   unbounded writes: snprintf, memcpy
#                                         with a checked length
#   strncpy strncat                       do not always NUL-terminate (strncpy)
#                                         or take a confusing bound (strncat):
#                                         snprintf, memcpy
#   atoi atol atoll                       no error reporting: strtol/strtoull
#                                         with errno and end-pointer checks
#   strtok                                hidden static state: strtok_r, strcspn
#   tmpnam mktemp                         racy temp names: mkstemp, mkdtemp
#
#   scripts/check-banned.sh [ROOT]        (default: the repository)
set -eu

ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
exec /usr/bin/python3 - "$ROOT" <<'EOF'
import os
import re
import sys

root = sys.argv[1]
DIRS = ["include", "lib", "ports", "server", "agent", "boot", "sim", "tools", "bench", "fuzz"]
BANNED = ["strcpy", "strncpy", "strcat", "strncat", "sprintf", "vsprintf", "gets", "atoi",
          "atol", "atoll", "strtok", "tmpnam", "mktemp"]
CALL = re.compile(r"(?<![\w.>])(" + "|".join(BANNED) + r")\s*\(")


def strip(text):
    """Blank out comments and string/char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


hits = 0
for d in DIRS:
    top = os.path.join(root, d)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(x for x in dirnames if not x.startswith("."))
        for name in sorted(filenames):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = strip(f.read())
            for lineno, line in enumerate(text.split("\n"), 1):
                for m in CALL.finditer(line):
                    print("%s:%d: %s" % (os.path.relpath(path, root), lineno, m.group(1)))
                    hits += 1
if hits:
    print("check-banned: %d call(s) of banned functions (see scripts/check-banned.sh)"
          % hits, file=sys.stderr)
    sys.exit(1)
print("check-banned: no banned function called")
EOF
