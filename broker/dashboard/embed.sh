#!/bin/sh
# embed.sh OUT FILE...: writes the C file OUT holding each FILE as a
# string named after it (dash.css: dash_css), so that simqd carries its
# dashboard's assets and needs no network to serve them.
out=$1
shift
{
	echo "/* Generated from broker/dashboard/ by embed.sh: do not edit. */"
	for f; do
		n=$(basename "$f" | tr '.-' '__')
		echo "extern const char $n[];"
		echo "const char $n[] ="
		sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' \
		    -e 's/^/	"/' -e 's/$/\\n"/' "$f"
		echo ";"
	done
} >"$out.tmp" && mv "$out.tmp" "$out"
