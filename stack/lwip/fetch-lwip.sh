#!/usr/bin/env bash
# fetch-lwip.sh DOWNLOAD_DIR SUITE [DEB_SRC_LINE]
#
# Downloads Debian's `lwip` source package (.dsc, orig and debian tarballs) into DOWNLOAD_DIR with
# `apt-get source --download-only`, through a PRIVATE apt configuration kept in DOWNLOAD_DIR/.apt:
# the system's sources, lists and caches are read-only to us. apt checks the archive's signature
# (Release file against the keyring in Signed-By) and the files against the signed index; the caller
# (FetchLwip.cmake) checks them again against the .dsc. Unpacking is the caller's job too, so
# dpkg-dev is not needed: only apt and debian-archive-keyring.
#
# The deb-src line is DEB_SRC_LINE when given (one-line format, e.g.
#   "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main"),
# otherwise it is derived from the first enabled Debian archive entry in /etc/apt/sources.list.d/*.sources
# (deb822) or /etc/apt/sources.list{,.d/*.list} (one-line): same URI and keyring, suite SUITE, main.
set -euo pipefail

die() { echo "fetch-lwip: $*" >&2; exit 1; }

[[ $# -ge 2 && $# -le 3 ]] || die "usage: fetch-lwip.sh DOWNLOAD_DIR SUITE [DEB_SRC_LINE]"
download_dir=$1
suite=$2
source_line=${3:-}
command -v apt-get >/dev/null || die "apt-get not found: fetching lwIP needs a Debian-like system (or pass -DANYSOCK_LWIP_SOURCE_DIR=/path/to/lwip)"

# Prints "URI<TAB>KEYRING" for the first enabled deb822 stanza that carries a plain (dash-free)
# suite of the Debian archive with the main component; KEYRING may be empty.
find_deb822_archive() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb(-src)?( |$)/ && comps ~ /(^| )main( |$)/ && enabled != "no" &&
            uris != "" && has_plain_suite) {
          split(uris, u, " "); print u[1] "\t" keyring; found = 1; exit
        }
        types = uris = comps = keyring = enabled = ""; has_plain_suite = 0
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/ { next }  # continuation line (e.g. an inline key): ignored
      {
        key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^[ \t]+/, ""); value = $0
        if (key == "types") types = value
        else if (key == "uris") uris = value
        else if (key == "components") comps = value
        else if (key == "enabled") enabled = tolower(value)
        else if (key == "signed-by" && value ~ /^\//) keyring = value
        else if (key == "suites") { n = split(value, s, " "); for (i = 1; i <= n; i++) if (s[i] !~ /[-\/]/) has_plain_suite = 1 }
      }
      END { if (!found) flush() }
    ' "$f" | head -n 1 | grep . && return 0
  done
  return 1
}

# Same from one-line files: "deb [options] URI SUITE COMPONENTS...".
find_oneline_archive() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    awk '
      /^[ \t]*deb(-src)?[ \t]/ {
        keyring = ""; i = 2
        if ($2 ~ /^\[/) {
          while (i <= NF) {
            if ($i ~ /signed-by=/) { k = $i; sub(/.*signed-by=/, "", k); sub(/\]$/, "", k); keyring = k }
            if ($i ~ /\]$/) { i++; break }
            i++
          }
        }
        uri = $i; s = $(i + 1); comps = ""
        for (j = i + 2; j <= NF; j++) comps = comps " " $j
        if (s !~ /[-\/]/ && comps ~ / main( |$)/) { print uri "\t" keyring; exit }
      }
    ' "$f" | head -n 1 | grep . && return 0
  done
  return 1
}

if [[ -z $source_line ]]; then
  found=$(find_deb822_archive || find_oneline_archive) ||
    die "no Debian archive entry in /etc/apt/sources.list{,.d}; pass -DANYSOCK_LWIP_APT_SOURCE='deb-src [signed-by=...] URI ${suite} main' or -DANYSOCK_LWIP_SOURCE_DIR=/path/to/lwip"
  uri=${found%%$'\t'*}
  keyring=${found#*$'\t'}
  if [[ -z $keyring && -r /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  fi
  if [[ -n $keyring ]]; then
    source_line="deb-src [signed-by=${keyring}] ${uri} ${suite} main"
  else
    source_line="deb-src ${uri} ${suite} main"  # apt then checks against its trusted.gpg.d keys
  fi
fi

mkdir -p "$download_dir"
download_dir=$(cd "$download_dir" && pwd)
apt_dir=$download_dir/.apt
rm -rf "$apt_dir"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
printf '%s\n' "$source_line" >"$apt_dir/sources.list"
echo "fetch-lwip: apt source: $source_line"

apt_options=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Acquire::Languages=none"
)
# As root apt downloads as the _apt user, who may not be able to write into a build tree; say
# so up front instead of letting apt warn about it.
if [[ $(id -u) -eq 0 ]]; then
  apt_options+=(-o "APT::Sandbox::User=root")
fi

apt-get -q "${apt_options[@]}" update ||
  die "apt-get update failed for '$source_line' (no network, or the archive's signature did not verify)"
(cd "$download_dir" && apt-get -q "${apt_options[@]}" source --download-only --only-source lwip) ||
  die "apt-get source --download-only lwip failed"
rm -rf "$apt_dir"  # the index is ~20 MB and only needed for this download
