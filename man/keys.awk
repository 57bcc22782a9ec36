# Turns the Markdown key table of conf_doc() into roff for mefd.conf(5):
# one .TP entry per key, grouped under a .SS per section.
BEGIN { FS = "|" }
NR <= 2 { next }
{
	for (i = 2; i <= 6; i++) { gsub(/^ +| +$/, "", $i); gsub(/\*\*/, "", $i); gsub(/\\/, "\\e", $i) }
	if ($2 != sec) { printf ".SS [%s]\n", $2; sec = $2 }
	printf ".TP\n.B %s\n%s (%s; default: %s).\n", $3, $6, $4, $5
}
